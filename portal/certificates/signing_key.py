"""The sealing key, loaded once per process and per key file.

pyHanko's SimpleSigner keeps the key as PKCS#8 bytes and parses it again for every signature
(for RSA that includes cryptography's full key validation, the bulk of a seal), and its size
estimate signs a dummy first. Here the key is parsed and validated once, when it is loaded;
the signer keeps the parsed key, and a dry run returns a placeholder of the signature's size
instead of signing. A key or certificate file that changes on disk (rotation: a new inode,
mtime or size) is loaded again on the next seal.
"""
from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import keys, tsp, x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.keys import load_cert_from_pemder
from pyhanko.keys.internal import translate_pyca_cryptography_key_to_asn1
from pyhanko.sign import attributes, signers
from pyhanko.sign.attributes import CMSAttributeProvider, SignedAttributeProviderSpec
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

MISSING = ("No signing key: set SIGNING_KEY and SIGNING_CERT (PEM) or SIGNING_PKCS12, or run "
           "`flask --app wsgi certs init` for a development key.")
_MAX_KEPT = 8  # distinct configurations kept (tests and key rotation make a few)


class SealNotConfigured(RuntimeError):
    pass


class _KeptSigningCertificate(attributes.SigningCertificateV2Provider):
    """The signing-certificate-v2 value as parsed DER: asn1crypto serialises a freshly built
    one again at each of the three times a seal dumps it (most of a seal's time)."""

    def __init__(self, der: bytes) -> None:
        self.der = der

    async def build_attr_value(self, dry_run: bool = False) -> tsp.SigningCertificateV2:
        return tsp.SigningCertificateV2.load(self.der)


class _KeptAttributes(SignedAttributeProviderSpec):
    """pyHanko's own signed attributes, with the signing certificate's value kept."""

    def __init__(self, spec: SignedAttributeProviderSpec, der: bytes) -> None:
        self.spec, self.der = spec, der

    def signed_attr_providers(self, data_digest: bytes,
                              digest_algorithm: str) -> Iterator[CMSAttributeProvider]:
        for provider in self.spec.signed_attr_providers(data_digest, digest_algorithm):
            yield (_KeptSigningCertificate(self.der) if type(provider)
                   is attributes.SigningCertificateV2Provider else provider)


class KeptKeySigner(signers.SimpleSigner):
    """A SimpleSigner that signs with the key object parsed (and validated) at load."""

    def __init__(self, key: Key) -> None:
        super().__init__(signing_cert=key.cert, signing_key=key.key_info,
                         cert_registry=SimpleCertificateStore.from_certs(key.chain))
        self._private_key = key.private_key
        self._signing_certificate = key.signing_certificate_der

    def _signed_attr_provider_spec(self, *args: Any, **kwargs: Any) -> Any:
        return _KeptAttributes(super()._signed_attr_provider_spec(*args, **kwargs),
                               self._signing_certificate)

    async def async_sign_raw(self, data: bytes, digest_algorithm: str,
                             dry_run: bool = False) -> bytes:
        if dry_run and isinstance(self._private_key, rsa.RSAPrivateKey):
            # The size estimate only measures: an RSA signature is always the modulus' size.
            return bytes(self._private_key.key_size // 8)
        return self.sign_raw(data, digest_algorithm)

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        try:
            name = mechanism.signature_algo
        except ValueError:
            name = mechanism["algorithm"].native
        key = self._private_key
        if name == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
        if name == "rsassa_pss" and isinstance(key, rsa.RSAPrivateKey):
            padding, algorithm = process_pss_params(mechanism["parameters"])
            return key.sign(data, padding, algorithm)
        if name == "ecdsa" and isinstance(key, EllipticCurvePrivateKey):
            return key.sign(data, ECDSA(get_pyca_cryptography_hash(digest_algorithm)))
        return super().sign_raw(data, digest_algorithm)  # rarer kinds: pyHanko's own way


@dataclass
class Key:
    """What one configuration's files hold, parsed once."""

    cert: x509.Certificate
    key_info: keys.PrivateKeyInfo
    private_key: Any  # cryptography's private key object
    chain: tuple[x509.Certificate, ...]
    reserved: dict[str, int] = field(default_factory=dict)  # TSA URL ("" none) -> bytes
    signing_certificate_der: bytes = b""

    def __post_init__(self) -> None:
        self.signing_certificate_der = as_signing_certificate_v2(self.cert).dump()

    def signer(self) -> KeptKeySigner:
        return KeptKeySigner(self)


_lock = threading.Lock()
_kept: dict[tuple[str, ...], tuple[tuple[Any, ...], Key]] = {}
_timestampers: dict[str, HTTPTimeStamper] = {}


def configured_paths(config: dict[str, Any]) -> tuple[str, ...]:
    """The key's files (PKCS#12, or PEM key and certificate); SealNotConfigured if none."""
    if config.get("SIGNING_PKCS12"):
        return (str(config["SIGNING_PKCS12"]),)
    if config.get("SIGNING_KEY") and config.get("SIGNING_CERT"):
        return (str(config["SIGNING_KEY"]), str(config["SIGNING_CERT"]))
    raise SealNotConfigured(MISSING)


def _stamp(paths: tuple[str, ...]) -> tuple[Any, ...]:
    """What tells a replaced or rewritten file from the one loaded (os.stat costs ~µs)."""
    try:
        return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in map(os.stat, paths))
    except OSError as exc:
        raise SealNotConfigured(f"The signing key cannot be read: {exc}") from exc


def _load(paths: tuple[str, ...], password: bytes | None) -> Key:
    """Parse once, with cryptography's full key validation."""
    try:
        if len(paths) == 1:
            private_key, cert, extra = pkcs12.load_key_and_certificates(
                Path(paths[0]).read_bytes(), password)
            if private_key is None or cert is None:
                raise ValueError("the PKCS#12 file holds no key and certificate")
            der = serialization.Encoding.DER
            signing_cert = x509.Certificate.load(cert.public_bytes(der))
            chain = tuple(x509.Certificate.load(c.public_bytes(der)) for c in extra)
        else:
            data = Path(paths[0]).read_bytes()
            loader = (serialization.load_pem_private_key if b"-----BEGIN" in data
                      else serialization.load_der_private_key)
            private_key = loader(data, password=password)
            signing_cert, chain = load_cert_from_pemder(paths[1]), ()
    except (OSError, ValueError, TypeError) as exc:
        raise SealNotConfigured(f"The signing key could not be loaded ({exc})") from exc
    return Key(signing_cert, translate_pyca_cryptography_key_to_asn1(private_key),
               private_key, chain)


def loaded_key(config: dict[str, Any]) -> Key:
    """The configured key, parsed on first use and again only when its files change."""
    paths = configured_paths(config)
    password = (config.get("SIGNING_KEY_PASSWORD") or "").encode() or None
    ident = (*paths, repr(password))
    stamp = _stamp(paths)
    with _lock:  # one thread loads; the others wait for it rather than load it too
        kept = _kept.get(ident)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        key = _load(paths, password)
        if len(_kept) >= _MAX_KEPT:
            _kept.clear()
        _kept[ident] = (stamp, key)
        return key


def timestamper(url: str) -> TimeStamper | None:
    """One per TSA URL and process, so its dummy answer (for the size) is asked for once."""
    if not url:
        return None
    with _lock:
        return _timestampers.setdefault(url, HTTPTimeStamper(url))


def bytes_to_reserve(key: Key, tsa: TimeStamper | None, tsa_url: str) -> int:
    """Room for the signature container, measured once per key and TSA by a dry run that
    signs nothing (as pyHanko's own estimate: hex doubles it, and 50% for a TSA's whims)."""
    if tsa_url in key.reserved:
        return key.reserved[tsa_url]
    empty_digest = hashes.Hash(hashes.SHA256()).finalize()
    container = asyncio.run(key.signer().async_sign(
        empty_digest, "sha256", use_pades=True, dry_run=True, timestamper=tsa,
        signed_attr_settings=PdfCMSSignedAttributes(signing_time=datetime.now(UTC))))
    size = len(container.dump()) * 2
    key.reserved[tsa_url] = reserved = size + 2 * (size // 4)
    return reserved
