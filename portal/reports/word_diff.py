"""A word-level difference of two texts (a page's extracted text in two versions), as
pieces the compare view shows as <del> and <ins>, with long unchanged runs cut short."""
from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

CONTEXT = 12  # unchanged words kept on each side of a change
# Beyond this many words between the common start and end, SequenceMatcher's exact
# search gets slow on repetitive text: let it skip the most frequent words instead.
EXACT_UP_TO = 1500


@dataclass(frozen=True)
class Piece:
    kind: str  # "same", "del" (only in the old text), "ins" (only in the new), "gap"
    text: str  # for a gap: how many unchanged words were left out

    @property
    def changed(self) -> bool:
        return self.kind in ("del", "ins")


def word_diff(old: str, new: str) -> list[Piece]:
    """The pieces of the difference; [] when the words are the same."""
    a, b = old.split(), new.split()
    if a == b:
        return []
    head = _common_prefix(a, b)
    tail = _common_prefix(a[head:][::-1], b[head:][::-1])
    middle_a, middle_b = a[head:len(a) - tail], b[head:len(b) - tail]
    ops: list[tuple[str, list[str], list[str]]] = [("equal", a[:head], a[:head])]
    matcher = SequenceMatcher(None, middle_a, middle_b,
                              autojunk=max(len(middle_a), len(middle_b)) > EXACT_UP_TO)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        ops.append((tag, middle_a[i1:i2], middle_b[j1:j2]))
    ops.append(("equal", a[len(a) - tail:], a[len(a) - tail:]))
    pieces: list[Piece] = []
    last = len(ops) - 1
    for index, (tag, old_words, new_words) in enumerate(ops):
        if tag == "equal":
            pieces.extend(_unchanged(old_words, first=index == 0, final=index == last))
            continue
        if old_words:
            pieces.append(Piece("del", " ".join(old_words)))
        if new_words:
            pieces.append(Piece("ins", " ".join(new_words)))
    return pieces


def _common_prefix(a: list[str], b: list[str]) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


def _unchanged(words: list[str], *, first: bool, final: bool) -> list[Piece]:
    """An unchanged run: whole when short, else its ends next to the changes around it."""
    before = 0 if first else CONTEXT  # words kept after the change before this run
    after = 0 if final else CONTEXT  # words kept before the change after this run
    if not words or len(words) <= before + after + 1:
        return [Piece("same", " ".join(words))] if words else []
    pieces = []
    if before:
        pieces.append(Piece("same", " ".join(words[:before])))
    pieces.append(Piece("gap", str(len(words) - before - after)))
    if after:
        pieces.append(Piece("same", " ".join(words[-after:])))
    return pieces
