"""The seal's key: parsed once per process, signed with once per seal, loaded again when its
file changes; PKCS#12 and a timestamp authority (a real RFC 3161 server on loopback) work."""
from __future__ import annotations

import io
import os
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import weasyprint
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps import DummyTimeStamper

from portal.certificates import signing_key
from portal.certificates.seal import (
    SealNotConfigured,
    check_seal,
    create_development_key,
    seal_pdf,
)


@pytest.fixture(scope="module")
def page() -> bytes:
    return weasyprint.HTML(string="<p>Sealed page</p>").write_pdf()


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    create_development_key(tmp_path, "Seal test")
    return tmp_path


def _config(directory: Path, **more: Any) -> dict[str, Any]:
    return {"SIGNING_KEY": str(directory / "seal-key.pem"),
            "SIGNING_CERT": str(directory / "seal-cert.pem"), **more}


def _signer_serial(pdf: bytes) -> int:
    signature = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures[0]
    return signature.signer_cert.serial_number


def _serial(cert_path: Path) -> int:
    return x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number


def test_the_key_is_parsed_once_and_each_seal_signs_once(key_dir, page, monkeypatch):
    config = _config(key_dir)
    loads: list[tuple[str, ...]] = []
    signatures: list[bytes] = []
    real_load, real_sign = signing_key._load, signing_key.KeptKeySigner.sign_raw

    def counting_load(paths, password):
        loads.append(paths)
        return real_load(paths, password)

    def counting_sign(self, data, digest_algorithm):
        signatures.append(data)
        return real_sign(self, data, digest_algorithm)
    monkeypatch.setattr(signing_key, "_load", counting_load)
    monkeypatch.setattr(signing_key.KeptKeySigner, "sign_raw", counting_sign)

    sealed = [seal_pdf(page, config, reason=f"seal {i}") for i in range(3)]

    assert len(loads) == 1, "the key is parsed (and validated) once, not per seal"
    assert len(signatures) == 3, "one signature per seal: the size estimate signs nothing"
    for pdf in sealed:
        assert check_seal(pdf, config).valid


def test_threads_sealing_at_once_load_the_key_once(key_dir, page, monkeypatch):
    config = _config(key_dir)
    loads: list[int] = []
    real_load = signing_key._load
    monkeypatch.setattr(signing_key, "_load", lambda *a: loads.append(1) or real_load(*a))
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(
        seal_pdf(page, config, reason="thread"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 4 and loads == [1]
    assert all(check_seal(pdf, config).valid for pdf in results)


def test_a_key_file_replaced_on_disk_is_used_by_the_next_seal(key_dir, page):
    config = _config(key_dir)
    first = seal_pdf(page, config, reason="before")
    old_serial = _serial(key_dir / "seal-cert.pem")
    assert _signer_serial(first) == old_serial

    create_development_key(key_dir, "Seal test, rotated")  # the same paths, new files
    second = seal_pdf(page, config, reason="after")

    assert _signer_serial(second) == _serial(key_dir / "seal-cert.pem") != old_serial
    assert check_seal(second, config).valid
    assert not check_seal(first, config).valid, "the old key is no longer ours"


def test_a_key_rewritten_in_place_with_the_same_mtime_is_still_noticed(key_dir, page):
    """An editor that rewrites the file keeps the inode; the size or mtime tells."""
    config = _config(key_dir)
    seal_pdf(page, config, reason="before")
    key_path = key_dir / "seal-key.pem"
    stat = key_path.stat()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path.write_bytes(other.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    os.utime(key_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    kept = signing_key.loaded_key(config)
    assert kept.private_key.key_size == 2048


def test_an_unreadable_or_broken_key_is_not_configured(tmp_path, key_dir, page):
    with pytest.raises(SealNotConfigured):
        seal_pdf(page, _config(tmp_path / "nowhere"), reason="x")
    (key_dir / "seal-key.pem").write_text("-----BEGIN PRIVATE KEY-----\nbroken\n")
    with pytest.raises(SealNotConfigured):
        seal_pdf(page, _config(key_dir), reason="x")
    with pytest.raises(SealNotConfigured):
        seal_pdf(page, {}, reason="x")


def test_a_pkcs12_key_with_a_password_seals(key_dir, page, tmp_path):
    key = serialization.load_pem_private_key((key_dir / "seal-key.pem").read_bytes(), None)
    cert = x509.load_pem_x509_certificate((key_dir / "seal-cert.pem").read_bytes())
    bundle = tmp_path / "seal.p12"
    bundle.write_bytes(pkcs12.serialize_key_and_certificates(
        b"seal", key, cert, None, serialization.BestAvailableEncryption(b"secret")))
    config = {"SIGNING_PKCS12": str(bundle), "SIGNING_KEY_PASSWORD": "secret"}

    pdf = seal_pdf(page, config, reason="pkcs12")

    assert _signer_serial(pdf) == cert.serial_number
    assert check_seal(pdf, config).valid
    with pytest.raises(SealNotConfigured):
        seal_pdf(page, {**config, "SIGNING_KEY_PASSWORD": "wrong"}, reason="x")


# --- a timestamp authority ---------------------------------------------------------------

class LoopbackTsa:
    """An RFC 3161 server on loopback (pyHanko's reference responder behind HTTP)."""

    def __init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Loopback TSA")])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=1))
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                               critical=True)
                .sign(key, hashes.SHA256()))
        responder = DummyTimeStamper(
            tsa_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
            tsa_key=asn1_keys.PrivateKeyInfo.load(key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption())))
        self.requests = 0
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = responder.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
                tsa.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsa"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tsa():
    server = LoopbackTsa()
    yield server
    server.stop()


def test_with_a_tsa_each_seal_carries_its_timestamp(key_dir, page, tsa):
    config = _config(key_dir, SIGNING_TSA_URL=tsa.url)

    first = seal_pdf(page, config, reason="stamped")
    asked_for_first = tsa.requests
    second = seal_pdf(page, config, reason="stamped again")

    # One dummy answer for the size (once per process), then one token per seal.
    assert asked_for_first == 2 and tsa.requests == 3
    for pdf in (first, second):
        signature = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures[0]
        token = signature.signer_info["unsigned_attrs"][0]
        assert token["type"].native == "signature_time_stamp_token"
        check = check_seal(pdf, config)
        assert check.valid, check.detail


# --- the audit trail's lines -------------------------------------------------------------

def _event(seq: int, verb: str, actor: str) -> Any:
    from types import SimpleNamespace
    return SimpleNamespace(seq=seq, at=datetime(2026, 1, 2, 3, 4, 5), verb=verb,
                           actor_label=actor, hash=f"{seq:016x}" + "f" * 48)


def test_audit_lines_line_up_and_a_name_stays_on_its_line():
    from portal.certificates.issue import audit_lines
    long_name = "Maximiliane Alexandra von Hohenzollern-Sigmaringen <max@client.example>"
    audit = audit_lines([_event(7, "deliverable.created", "Sam <sam@agency.example>"),
                         _event(1234, "comment.posted", "Jane\nDoe"),
                         _event(1235, "decision.approved", long_name)])
    lines = [audit.head, *audit.lines]
    assert len({line.index("2026") if "2026" in line else line.index("When")
                for line in lines}) == 1, "the time column starts at one place"
    assert len({line.rindex(" ") for line in lines}) == 1, "so does the hash column"
    assert "Jane Doe" in audit.lines[1] and "\n" not in "".join(audit.lines)
    assert "<" not in audit.lines[0], "the name only: addresses are in the sections above"
    assert "  Maximiliane Alexandra von Hohen…  " in audit.lines[2]  # 32 characters
    assert audit.lines[0].endswith(f"{7:016x}…")


def test_a_worker_warmed_before_forking_seals_in_the_fork_without_loading(
        app_config, key_dir, page):
    """jobs/worker.py warms the parent; RQ's work horse is a fork of it."""
    from portal import create_app
    from portal.certificates.issue import warm_up
    app_config.update(_config(key_dir))
    app = create_app(app_config)
    with app.app_context():
        warm_up()
    pid = os.fork()
    if pid == 0:  # the work horse: a load now would be a failure
        code = 1
        try:
            signing_key._load = None  # type: ignore[assignment]
            with app.app_context():
                code = 0 if check_seal(seal_pdf(page, app.config, reason="horse"),
                                       app.config).valid else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
