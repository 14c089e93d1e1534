"""Signed approval certificates: render (WeasyPrint), seal (pyHanko), verify."""
from portal.certificates.issue import (
    Verdict,
    Verification,
    by_public_id,
    issue_certificate,
    requests_missing_certificates,
    verify_pdf,
    verify_url,
)
from portal.certificates.seal import SealNotConfigured, create_development_key

__all__ = [
    "SealNotConfigured",
    "Verdict",
    "Verification",
    "by_public_id",
    "create_development_key",
    "issue_certificate",
    "requests_missing_certificates",
    "verify_pdf",
    "verify_url",
]
