"""A job that does nothing: the baseline for bench/mail.py (enqueued as `bench.noop.noop`)."""
from __future__ import annotations


def noop(i: int) -> int:
    return i
