"""The PostgreSQL database a benchmark recreates: its own name plus SIGNOFF_BENCH_DB_SUFFIX.
tests/test_bench_smoke.py sets a suffix, so a test run never drops a database someone loaded
by hand to rerun with --reuse."""
from __future__ import annotations

import os
import re


def bench_database(name: str) -> str:
    suffix = os.environ.get("SIGNOFF_BENCH_DB_SUFFIX", "")
    if not re.fullmatch(r"[a-z0-9_]{0,20}", suffix):
        raise SystemExit("SIGNOFF_BENCH_DB_SUFFIX takes lower-case letters, digits and _ only")
    return name + suffix
