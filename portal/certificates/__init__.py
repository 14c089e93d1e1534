"""Signed approval certificates: render (WeasyPrint), seal (pyHanko), issue, verify."""
from portal.certificates.issue import (
    ISSUE_JOB,
    ask_again_for_missing,
    issue_after_commit,
    issue_certificate,
    requests_missing_certificates,
    verify_url,
)
from portal.certificates.seal import SealNotConfigured, create_development_key
from portal.certificates.verify import (
    Verdict,
    Verification,
    by_public_id,
    verify_id,
    verify_pdf,
)

__all__ = [
    "ISSUE_JOB",
    "SealNotConfigured",
    "Verdict",
    "Verification",
    "ask_again_for_missing",
    "by_public_id",
    "create_development_key",
    "issue_after_commit",
    "issue_certificate",
    "requests_missing_certificates",
    "verify_id",
    "verify_pdf",
    "verify_url",
]
