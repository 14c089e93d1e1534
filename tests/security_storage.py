"""The file store's cases of the security catalogue (tests/test_security_catalogue.py
lists them): storage keys that would name a path, object names outside the prefix, and
Range requests that must wait for the access check."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from portal.files.storage import file_store
from portal.files.storage_s3 import S3Store

HASH = hashlib.sha256(b"any stored file").hexdigest()
# Keys a tampered row or a crafted call might carry: each would name another path.
BAD_KEYS = {
    "traversal": "../../../../etc/passwd",
    "hash then a path": HASH + "/../../../x",
    "a folder of the layout": HASH[:2],
    "upper case": HASH.upper(),
    "trailing newline": HASH + "\n",
    "NUL byte": HASH[:63] + "\x00",
    "absolute path": "/" + HASH[:63],
    "empty": "",
}


def _refused(call: Any, key: str) -> str:
    try:
        call(key)
    except ValueError:
        return "refused"
    except OSError as exc:  # reached the disk or the bucket: the key got through
        return f"looked up ({type(exc).__name__})"
    return "looked up"


def storage_keys_other_than_hashes(w: Any) -> dict[str, list[str]]:
    """Every store operation refuses a key that is not a lowercase SHA-256, before any
    file or object is looked up."""
    store = file_store()

    def copy(key: str) -> None:
        with store.local_copy(key):
            pass
    operations = (store.exists, store.size, store.open, store.sha256_of, store.read_bytes,
                  copy)
    return {name: sorted({_refused(op, key) for op in operations})
            for name, key in BAD_KEYS.items()}


def s3_object_names_stay_under_the_prefix(w: Any) -> dict[str, str]:
    """On S3 a key becomes prefix/ab/cd/<key> and nothing else: a bad key never becomes an
    object name (naming needs no server, so none is contacted)."""
    store = S3Store(None, "bucket", "tenant/signoff", Path(w.app.config["FILE_STORE"]))
    names = {"a hash": store.object_name(HASH)}
    for name, key in BAD_KEYS.items():
        names[name] = _refused(store.object_name, key)
    return names


def range_requests_after_the_access_check(w: Any) -> dict[str, Any]:
    """A Range header changes how much of a file is sent, never who may have it."""
    theirs, own = w.b.current_version, w.a.current_version
    mine = w.client_a
    first_ten = {"Range": "bytes=0-9"}
    own_part = mine.get(f"{mine.review}/files/{own.id}", headers=first_ten)
    past_end = mine.get(f"{mine.review}/files/{own.id}",
                        headers={"Range": f"bytes={own.size + 10}-"})
    anonymous = w.new_browser().get(f"/versions/{theirs.id}/file", headers=first_ten)
    return {
        "A asks a range of B's file": mine.get(f"{mine.review}/files/{theirs.id}",
                                               headers=first_ten).status_code,
        "A's own file, ten bytes": (own_part.status_code, len(own_part.get_data())),
        "past the end": (past_end.status_code, b"%PDF" in past_end.get_data()),
        "nobody signed in": (anonymous.status_code,
                             "/login" in anonymous.headers.get("Location", "")),
    }
