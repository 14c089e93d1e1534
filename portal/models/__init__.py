"""All models, importable from one place (Alembic sees them through this import)."""
from portal.models.agency import AgencyProfile
from portal.models.api import ApiToken, IdempotentRequest
from portal.models.base import UTCDateTime, today_utc, utcnow
from portal.models.compare import PageDiff
from portal.models.conditions import Condition, ConditionStatus
from portal.models.delegation import Delegation, DelegationStatus
from portal.models.observers import Observer  # noqa: F401  (CC contacts who never decide)
from portal.models.on_behalf import DecisionOnBehalf, OnBehalfChannel  # noqa: F401
from portal.models.people import Client, Contact, Project, Role, User
from portal.models.records import (
    AuditEvent,
    Certificate,
    OutboxMessage,
    OutboxStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from portal.models.renders import PageRender, RenderStatus, VersionRender
from portal.models.review import (
    APPROVED_STATUSES,
    Approver,
    ApproverStatus,
    Comment,
    Decision,
    DecisionCode,
    IdentityCheck,
    Outcome,
    PointStatus,
    Policy,
    RejectionScope,
    Reminder,
    RequestStatus,
    ReviewRequest,
)
from portal.models.seen import CommentSeenMark
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
    "APPROVED_STATUSES",
    "AgencyProfile",
    "ApiToken",
    "Approver",
    "ApproverStatus",
    "AuditEvent",
    "Certificate",
    "Client",
    "Comment",
    "CommentSeenMark",
    "Condition",
    "ConditionStatus",
    "Contact",
    "Decision",
    "DecisionCode",
    "Delegation",
    "DelegationStatus",
    "Deliverable",
    "DeliverableState",
    "IdempotentRequest",
    "IdentityCheck",
    "InternalReview",
    "OutboxMessage",
    "OutboxStatus",
    "Outcome",
    "PageDiff",
    "PageRender",
    "PointStatus",
    "Policy",
    "Project",
    "RejectionScope",
    "Reminder",
    "RenderStatus",
    "RequestStatus",
    "ReviewOutcome",
    "ReviewRequest",
    "Role",
    "UTCDateTime",
    "User",
    "Version",
    "VersionRender",
    "WebhookDelivery",
    "WebhookEndpoint",
    "today_utc",
    "utcnow",
]
