"""All models, importable from one place (Alembic sees them through this import)."""
from portal.models.base import UTCDateTime, utcnow
from portal.models.people import Client, Contact, Project, Role, User
from portal.models.records import (
    AuditEvent,
    Certificate,
    OutboxMessage,
    OutboxStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from portal.models.review import (
    Approver,
    ApproverStatus,
    Comment,
    Decision,
    Outcome,
    Policy,
    RejectionScope,
    Reminder,
    RequestStatus,
    ReviewRequest,
)
from portal.models.work import (
    APPROVED_STATES,
    Deliverable,
    DeliverableState,
    InternalReview,
    ReviewOutcome,
    Version,
)

__all__ = [
    "APPROVED_STATES",
    "Approver",
    "ApproverStatus",
    "AuditEvent",
    "Certificate",
    "Client",
    "Comment",
    "Contact",
    "Decision",
    "Deliverable",
    "DeliverableState",
    "InternalReview",
    "OutboxMessage",
    "OutboxStatus",
    "Outcome",
    "Policy",
    "Project",
    "RejectionScope",
    "Reminder",
    "RequestStatus",
    "ReviewOutcome",
    "ReviewRequest",
    "Role",
    "UTCDateTime",
    "User",
    "Version",
    "WebhookDelivery",
    "WebhookEndpoint",
    "utcnow",
]
