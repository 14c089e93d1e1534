"""/api/v1 schemas of approval certificates and of verifying one (portal/api/certificates.py)."""
from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import Schema, fields

from portal.api.common import ROW_ID
from portal.api.pagination import PageArgs
from portal.certificates import Verdict
from portal.i18n import LANGUAGES
from portal.models import APPROVED_STATUSES

PUBLIC_ID = {"description": "the certificate's id, as printed on it",
             "example": "SO-7KQM-2XRT-9BWD"}


class CertificateListArgs(PageArgs):
    """The finance page's filters (portal/views/finance.py)."""

    client = fields.Integer(validate=ROW_ID, metadata={"description": "a client's id"})
    project = fields.Integer(validate=ROW_ID, metadata={"description": "a project's id"})
    start = fields.Date(metadata={"description": "approved on or after this day (UTC)"})
    end = fields.Date(metadata={"description": "approved on or before this day (UTC)"})


class CertificateRequestSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True, metadata={
        "enum": sorted(s.value for s in APPROVED_STATUSES)})
    status_label = fields.String(required=True, metadata={"description": "in your language"})
    closed_at = fields.DateTime(required=True, allow_none=True,
                                metadata={"description": "when the approval completed"})


class CertificateVersionSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.Integer(required=True)
    file_name = fields.String(required=True)
    sha256 = fields.String(required=True, metadata={"description": "of the approved file"})


class CertificateDeliverableSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)


class CertificateProjectSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


class CertificateClientSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


class CertificateSchema(Schema):
    id = fields.String(required=True, metadata=PUBLIC_ID)
    request = fields.Nested(CertificateRequestSchema, required=True)
    version = fields.Nested(CertificateVersionSchema, required=True)
    deliverable = fields.Nested(CertificateDeliverableSchema, required=True)
    project = fields.Nested(CertificateProjectSchema, required=True)
    client = fields.Nested(CertificateClientSchema, required=True)
    issued_at = fields.DateTime(required=True)
    language = fields.String(required=True, metadata={
        "enum": sorted(LANGUAGES), "description": "the language it was issued in"})
    sealed = fields.Boolean(required=True, metadata={
        "description": "a certificate exists only once sealed with the agency's key (PAdES) "
                       "and stored; until then its request has none (being issued)"})
    pdf_sha256 = fields.String(required=True, metadata={"description": "of the sealed PDF"})
    size = fields.Integer(required=True, metadata={"description": "of the PDF, in bytes"})
    audit_head_hash = fields.String(required=True, metadata={
        "description": "the audit trail's head hash when it was issued"})
    verify_url = fields.String(required=True, metadata={
        "description": "the public verification page its QR code opens"})
    pdf_url = fields.String(required=True, metadata={"description": "this API's download"})


class VerificationUploadSchema(Schema):
    file = Upload(required=True, metadata={"description": "the certificate PDF"})


class VerificationDecisionSchema(Schema):
    name = fields.String(required=True)
    outcome = fields.String(required=True, metadata={"description": "in your language"})
    at = fields.DateTime(required=True)
    conditions = fields.Integer(required=True, metadata={"description": "how many"})
    changes_requested = fields.Boolean(required=True)


class VerificationRecordSchema(Schema):
    """What the certificate records, as the public verify page shows it: names, outcomes,
    the version and dates; never email or IP addresses, browsers, or what anyone wrote."""

    certificate_id = fields.String(required=True, metadata=PUBLIC_ID)
    agency = fields.String(required=True, metadata={"description": "who issued it"})
    issued_at = fields.DateTime(required=True)
    pdf_sha256 = fields.String(required=True, metadata={"description": "of the issued file"})
    outcome = fields.String(required=True, metadata={"description": "in your language"})
    client = fields.String(required=True)
    project = fields.String(required=True)
    deliverable = fields.String(required=True)
    version = fields.Integer(required=True)
    file_name = fields.String(required=True)
    file_sha256 = fields.String(required=True, metadata={"description": "of the approved file"})
    decisions = fields.List(fields.Nested(VerificationDecisionSchema), required=True)


class VerificationSchema(Schema):
    valid = fields.Boolean(required=True, metadata={
        "description": "true only if the file is, byte for byte, a certificate we issued"})
    verdict = fields.String(required=True, metadata={
        "enum": [Verdict.GENUINE.value, Verdict.ALTERED.value, Verdict.UNKNOWN.value]})
    summary = fields.String(required=True, metadata={"description": "the page's heading"})
    detail = fields.String(required=True, metadata={"description": "why, in your language"})
    certificate_id = fields.String(required=True, allow_none=True, metadata={
        "description": "the certificate the file is, or claims to be; null if none"})
    certifies = fields.Nested(VerificationRecordSchema, required=True, allow_none=True,
                              metadata={"description": "what that certificate records"})
