"""Every benchmark in bench/ still runs to its tables, at its smallest size.

Nothing here is timed (speed lives in the benchmarks, run by hand): a benchmark that no longer
starts, because a domain function it calls changed, is what this catches (bench/certificates.py
stopped at its first render when render_certificate gained its language). The PostgreSQL ones
recreate their databases under a suffix of their own (bench/names.py), never the ones a person
loaded by hand.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import need_server

REPO = Path(__file__).resolve().parent.parent
SMOKE_SUFFIX = f"_smoke_{os.getpid()}"  # two runs on one server never drop each other's
SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def run_bench(script: str, *args: str, timeout: float = 300) -> str:
    """The benchmark in a process group of its own: on a timeout its gunicorns and RQ
    worker go with it."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "FLASK_DEBUG"}}
    env["SIGNOFF_BENCH_DB_SUFFIX"] = SMOKE_SUFFIX
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / script), *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"bench/{script} ran past {timeout:g} s:\n{out[-2000:]}\n{err[-2000:]}")
    assert proc.returncode == 0, f"bench/{script} failed:\n{out[-3000:]}\n{err[-3000:]}"
    return out


@pytest.fixture(scope="module")
def local_postgres() -> Iterator[None]:
    """The benchmarks' own server: the local PostgreSQL they create their databases on;
    the databases they made here are dropped afterwards."""
    try:
        psycopg.connect(SERVER).close()
    except psycopg.OperationalError as exc:
        need_server("PostgreSQL", f"the benchmarks use 127.0.0.1:5432: {exc}")
    yield
    with psycopg.connect(SERVER, autocommit=True) as conn:
        for name in ("signoff_bench", "signoff_bench_dashboard"):
            conn.execute(f"DROP DATABASE IF EXISTS {name}{SMOKE_SUFFIX} WITH (FORCE)")


def test_certificates_bench_prints_the_seal_render_and_download_tables() -> None:
    out = run_bench("certificates.py", "--repeat", "1", "--downloads", "2")
    for row in ("seal alone", "its words alone", "GET /certificates/<id>.pdf (staff)"):
        assert row in out, row
    assert len(re.findall(r"certificate render \+ seal, \d+ events", out)) == 2


def test_render_bench_compares_the_render_job_with_pdftoppm() -> None:
    if not Path("/usr/bin/pdftoppm").exists():  # where bench/render.py calls it
        need_server("pdftoppm", "poppler-utils is not installed")
    out = run_bench("render.py", "--repeat", "1", "--pages", "2")
    assert "render job" in out and "x pdftoppm" in out


def test_verify_bench_judges_every_upload() -> None:
    out = run_bench("verify.py", "--repeat", "1", "--skip-old")
    assert "genuine certificate" in out and "xref bomb" in out


def test_review_page_bench_counts_statements_and_drives_gunicorn() -> None:
    out = run_bench("review_page.py", "--db", "sqlite", "--seconds", "1", "--warmup", "0.5",
                    "--profile", "0")
    assert "SQL per GET" in out and "| GET /review/<id>" in out and "bare GET /page" in out


def test_mail_bench_sends_through_a_worker(redis_url: str) -> None:
    out = run_bench("mail.py", "--messages", "20", "--before", "5", "--redis", redis_url)
    assert "raw smtplib, one connection" in out and "worker, batches (at the sink)" in out


def test_sweep_bench_sweeps_a_small_database(local_postgres: None) -> None:
    out = run_bench("sweep.py", "--approvers", "1000")
    assert f"signoff_bench{SMOKE_SUFFIX}" in out and "reminders/s" in out


def test_dashboard_bench_times_the_signed_in_dashboard(local_postgres: None) -> None:
    out = run_bench("dashboard.py", "--deliverables", "2000", "--requests", "2", "--repeat", "1")
    assert f"signoff_bench_dashboard{SMOKE_SUFFIX}" in out and "GET / (mine)" in out
