"""The digital seal: a PAdES signature over the whole PDF (pyHanko), and its check."""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.general import load_cert_from_pemder
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from portal.certificates.signing_key import (
    SealNotConfigured,
    bytes_to_reserve,
    configured_paths,
    loaded_key,
    timestamper,
)

__all__ = ["SealNotConfigured", "check_seal", "create_development_key",
           "ensure_seal_configured", "seal_pdf"]


def ensure_seal_configured(config: dict[str, Any]) -> None:
    """Fail before any rendering work when there is no key to seal with."""
    configured_paths(config)


def seal_pdf(pdf: bytes, config: dict[str, Any], *, reason: str) -> bytes:
    """Sign so that the signature covers the whole file; timestamp when a TSA is set.
    One signature per seal: the key is the process's parsed one and the room for the
    signature is reserved from a size measured once (signing_key.py)."""
    key = loaded_key(config)
    tsa_url = str(config.get("SIGNING_TSA_URL") or "")
    tsa = timestamper(tsa_url)
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    metadata = signers.PdfSignatureMetadata(
        field_name="SignoffSeal", subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256", reason=reason, location=config.get("PUBLIC_BASE_URL", ""),
    )
    out = signers.sign_pdf(writer, metadata, signer=key.signer(), timestamper=tsa,
                           bytes_reserved=bytes_to_reserve(key, tsa, tsa_url))
    return out.getvalue()


@dataclass(frozen=True)
class SealCheck:
    valid: bool  # intact, by our key, covering the whole file
    detail: str
    signed_at: datetime | None = None


def check_seal(pdf: bytes, config: dict[str, Any]) -> SealCheck:
    """Is this PDF sealed by our key, untouched since?"""
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_signatures
    except Exception as exc:  # pyHanko raises many kinds for a broken file
        return SealCheck(False, f"not a readable PDF ({type(exc).__name__})")
    if len(signatures) != 1:
        return SealCheck(False, f"expected one seal, found {len(signatures)}")
    try:
        ours = [loaded_key(config).cert if config.get("SIGNING_PKCS12")
                else load_cert_from_pemder(config["SIGNING_CERT"])]
        ours += [load_cert_from_pemder(path) for path in
                 str(config.get("SIGNING_CERT_FALLBACKS") or "").split(",") if path.strip()]
        status = validate_pdf_signature(signatures[0], ValidationContext(trust_roots=ours))
    except Exception as exc:
        return SealCheck(False, f"the seal could not be checked ({type(exc).__name__})")
    if not status.intact or not status.valid:
        return SealCheck(False, "the seal does not match the content")
    if not status.trusted:
        return SealCheck(False, "sealed by a key that is not ours")
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        return SealCheck(False, "content was added after sealing")
    return SealCheck(True, "sealed by our key, whole file covered", status.signer_reported_dt)


def create_development_key(directory: Path, common_name: str) -> tuple[Path, Path]:
    """A self-signed RSA key and certificate for development and the demo."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Signoff (development)")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_cert_sign=True,
            crl_sign=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "seal-key.pem", directory / "seal-cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path
