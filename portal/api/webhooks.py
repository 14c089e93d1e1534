"""/api/v1: Webhook endpoints (admins).

What the admin webhook pages do (portal/views/admin.py), through the same functions
(portal/notifications/webhooks.py): register, switch on or off, rotate the secret, read
the delivery log and resend a delivery. The pages offer no editing of a URL and no
deletion, so neither does this. Each function refuses anyone but an admin with its own
words; reads refuse with the words of managing webhooks."""
from __future__ import annotations

from functools import partial
from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select

from portal.api.auth import acting_user
from portal.api.common import ID, LOCATION, storable_text
from portal.api.common import problems as documented
from portal.api.pagination import PageArgs, page_of, paginate
from portal.api.writes import creates, writes
from portal.extensions import db
from portal.models import OutboxStatus, WebhookDelivery, WebhookEndpoint
from portal.notifications import webhooks
from portal.permissions import require_admin

blp = Blueprint("api_webhooks", __name__, description=(
    "Webhook endpoints (admins). Signoff POSTs a signed JSON event to each active "
    f"endpoint: {', '.join(webhooks.EVENTS)}. Failed deliveries are retried with backoff "
    "for 24 hours."))

ENDPOINT_ID = f"<{ID}:endpoint_id>"
DELIVERY_ID = f"<{ID}:delivery_id>"


problems = partial(documented, blp)  # the refusals an operation can answer


class WebhookEndpointSchema(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    description = fields.String(required=True)
    allow_private_network = fields.Boolean(required=True, metadata={
        "description": "loopback, link-local and private addresses allowed"})
    active = fields.Boolean(required=True, metadata={
        "description": "on: receives events; off: events wait until it is switched on"})
    created_at = fields.DateTime(required=True)


class WebhookEndpointDetailSchema(WebhookEndpointSchema):
    secret = fields.String(required=True, metadata={
        "description": "signs each delivery (Signoff-Signature: HMAC-SHA256), as the "
                       "endpoint's page shows it"})


class WebhookEndpointCreateSchema(Schema):
    url = fields.String(required=True, validate=storable_text, metadata={
        "description": "http:// or https://; internal addresses are refused unless "
                       "allow_private_network", "example": "https://billing.example.com/hooks"})
    description = fields.String(load_default="", validate=storable_text)
    allow_private_network = fields.Boolean(load_default=False, metadata={
        "description": "only for receivers inside your own network"})


class WebhookEndpointUpdateSchema(Schema):
    active = fields.Boolean(required=True, metadata={"description": "switch on or off"})


class WebhookDeliverySchema(Schema):
    id = fields.Integer(required=True)
    endpoint_id = fields.Integer(required=True)
    event_id = fields.String(required=True)
    event_type = fields.String(required=True, metadata={"enum": list(webhooks.EVENTS)})
    status = fields.String(required=True, metadata={"enum": [s.value for s in OutboxStatus]})
    status_label = fields.String(required=True, metadata={"description": "in your language"})
    attempts = fields.Integer(required=True)
    last_status_code = fields.Integer(required=True, allow_none=True)
    last_error = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    next_attempt_at = fields.DateTime(required=True)
    delivered_at = fields.DateTime(required=True, allow_none=True)


def _only_admins() -> None:
    require_admin(acting_user(), "manage webhooks")


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    """An admin's endpoint by id: staff are refused before learning whether it exists."""
    _only_admins()
    return db.get_or_404(WebhookEndpoint, endpoint_id)


def _delivery(d: WebhookDelivery) -> dict[str, Any]:
    return {"id": d.id, "endpoint_id": d.endpoint_id, "event_id": d.event_id,
            "event_type": d.event_type, "status": d.status.value,
            "status_label": d.status.label, "attempts": d.attempts,
            "last_status_code": d.last_status_code, "last_error": d.last_error,
            "created_at": d.created_at, "next_attempt_at": d.next_attempt_at,
            "delivered_at": d.delivered_at}


@blp.get("/webhook-endpoints")
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(WebhookEndpointSchema))
@problems(401, 403, 422)
def list_webhook_endpoints(args: dict[str, Any]) -> dict[str, Any]:
    """List webhook endpoints, newest first"""
    _only_admins()
    return paginate(select(WebhookEndpoint), WebhookEndpoint.id, args)


@blp.post("/webhook-endpoints")
@creates
@blp.arguments(WebhookEndpointCreateSchema)
@blp.response(201, WebhookEndpointDetailSchema, headers=LOCATION)
@problems(400, 401, 403, 422)
def create_webhook_endpoint(body: dict[str, Any]) -> tuple:
    """Register a webhook endpoint

    Its URL must resolve to public internet addresses unless `allow_private_network`.
    The answer carries the signing secret."""
    endpoint = webhooks.register(acting_user(), body["url"], body["description"],
                                 body["allow_private_network"])
    db.session.flush()  # the id, for the answer and its Location
    return endpoint, 201, {"Location": url_for("api_webhooks.WebhookEndpointById",
                                               endpoint_id=endpoint.id)}


@blp.route(f"/webhook-endpoints/{ENDPOINT_ID}")
class WebhookEndpointById(MethodView):
    """One route for both methods: an id out of range then matches nothing (404), where
    two routes would answer one method's miss with the other's 405."""

    @blp.response(200, WebhookEndpointDetailSchema)
    @problems(401, 403, 404)
    def get(self, endpoint_id: int) -> WebhookEndpoint:
        """Read a webhook endpoint, with its secret"""
        return _endpoint(endpoint_id)

    @writes
    @blp.arguments(WebhookEndpointUpdateSchema)
    @blp.response(200, WebhookEndpointDetailSchema)
    @problems(400, 401, 403, 404, 422)
    def patch(self, body: dict[str, Any], endpoint_id: int) -> WebhookEndpoint:
        """Switch a webhook endpoint on or off

        Off: it gets no new events and nothing is sent to it. On again: what waited goes
        out at the next relay."""
        endpoint = _endpoint(endpoint_id)
        webhooks.set_active(acting_user(), endpoint, body["active"])
        return endpoint


@blp.post(f"/webhook-endpoints/{ENDPOINT_ID}/rotate-secret")
@writes
@blp.response(200, WebhookEndpointDetailSchema)
@problems(401, 403, 404, 422)
def rotate_webhook_secret(endpoint_id: int) -> WebhookEndpoint:
    """Rotate a webhook endpoint's secret

    The answer carries the new secret; the old one no longer signs anything."""
    endpoint = _endpoint(endpoint_id)
    webhooks.rotate_secret(acting_user(), endpoint)
    return endpoint


@blp.get(f"/webhook-endpoints/{ENDPOINT_ID}/deliveries")
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(WebhookDeliverySchema))
@problems(401, 403, 404, 422)
def list_webhook_deliveries(args: dict[str, Any], endpoint_id: int) -> dict[str, Any]:
    """List an endpoint's deliveries, newest first (its delivery log)"""
    endpoint = _endpoint(endpoint_id)
    page = paginate(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id),
                    WebhookDelivery.id, args)
    return {**page, "items": [_delivery(d) for d in page["items"]]}


@blp.post(f"/webhook-deliveries/{DELIVERY_ID}/resend")
@writes
@blp.response(200, WebhookDeliverySchema)
@problems(401, 403, 404, 422)
def resend_webhook_delivery(delivery_id: int) -> dict[str, Any]:
    """Resend a delivery

    The same event, with the same id (receivers can drop the repeat), queued again."""
    require_admin(acting_user(), "resend webhooks")
    delivery = db.get_or_404(WebhookDelivery, delivery_id)
    return _delivery(webhooks.resend(acting_user(), delivery))
