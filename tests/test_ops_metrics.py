"""/-/metrics: who may read it, and that each family says what happened (by endpoint, never
by path; queue depth from the real Redis; the outbox from the database; the sweep and the
certificate timed where they run). Aggregation across processes: tests/test_ops_gunicorn.py."""
from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Queue

import jobs.periodic
from portal.extensions import db
from portal.models import (
    DeliverableState,
    OutboxMessage,
    OutboxStatus,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from portal.notifications.queue import job_queue
from portal.ops.metrics import allowed
from portal.workflow.links import issue_token

S = DeliverableState
PATH = "/-/metrics"


def scrape(app, **kwargs) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = app.test_client().get(PATH, **kwargs)
    assert response.status_code == 200, response.status_code
    assert response.headers.get("Set-Cookie") is None
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_the_access_rule_token_else_loopback():
    assert allowed("", "", "127.0.0.1") and allowed("", "", "::1")
    assert not allowed("", "", "10.0.0.5") and not allowed("", "", None)
    assert allowed("s3cret-token", "Bearer s3cret-token", "203.0.113.9")
    assert not allowed("s3cret-token", "Bearer s3cret-tokeN", "127.0.0.1")
    assert not allowed("s3cret-token", "", "127.0.0.1")  # a token set: loopback is not enough
    assert not allowed("s3cret-token", "Basic s3cret-token", "127.0.0.1")
    assert not allowed("", "", "127.0.0.1", proxied=True)  # a proxy on this machine relaying
    assert allowed("s3cret-token", "Bearer s3cret-token", "127.0.0.1", proxied=True)


def test_strangers_get_a_404_and_the_token_opens_it(app):
    client = app.test_client()
    assert client.get(PATH, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 404
    assert client.get(PATH).status_code == 200  # the test client is 127.0.0.1
    app.config["METRICS_TOKEN"] = "a-long-metrics-token-0123456789"
    assert client.get(PATH).status_code == 404
    assert client.get(PATH, headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert client.get(PATH, environ_base={"REMOTE_ADDR": "203.0.113.9"}, headers={
        "Authorization": "Bearer a-long-metrics-token-0123456789"}).status_code == 200


def test_request_latency_is_by_endpoint_never_by_path(app, make_deliverable):
    d = make_deliverable(S.DELIVERED)
    token = issue_token(d.open_request.approvers[0])
    before = scrape(app)
    client = app.test_client()
    for _ in range(3):
        client.get(f"/r/{token}")
    client.get("/no/such/page")
    after = app.test_client().get(PATH).get_data(as_text=True)
    assert token not in after and token.split(".")[0] not in after
    samples = scrape(app)
    # The families live as long as the process: earlier tests may have opened links that
    # had run out (4xx); these three were redirected to the review page (3xx).
    review = {(name, labels) for (name, labels) in samples
              if name == "signoff_http_request_duration_seconds_count"
              and ("endpoint", "client.open_link") in labels and ("status", "3xx") in labels
              and ("method", "GET") in labels}
    assert review, sorted({dict(labels).get("endpoint") for _, labels in samples})
    [(name, labels)] = review
    assert samples[(name, labels)] - before.get((name, labels), 0) == 3
    assert dict(labels)["method"] == "GET"
    unmatched = value(samples, "signoff_http_request_duration_seconds_count",
                      endpoint="unmatched", method="GET", status="4xx")
    assert unmatched - value(before, "signoff_http_request_duration_seconds_count",
                             endpoint="unmatched", method="GET", status="4xx") == 1


def test_outbox_pending_and_failed_come_from_the_database(app):
    def email(key: str, status: OutboxStatus) -> OutboxMessage:
        return OutboxMessage(idempotency_key=key, to_addr="x@client.test", subject="s",
                             body_text="b", body_html="b", status=status,
                             next_attempt_at=utcnow() + timedelta(days=1))

    endpoint = WebhookEndpoint(url="https://hooks.example/x", secret="s" * 32)
    db.session.add(endpoint)
    db.session.flush()
    db.session.add_all([email("a", OutboxStatus.PENDING), email("b", OutboxStatus.PENDING),
                        email("c", OutboxStatus.FAILED), email("d", OutboxStatus.SENT)])
    db.session.add_all([WebhookDelivery(endpoint_id=endpoint.id, event_id=f"e{i}",
                                        event_type="request.approved", payload="{}",
                                        status=status)
                        for i, status in enumerate([OutboxStatus.FAILED] * 2)])
    db.session.commit()
    samples = scrape(app)
    assert value(samples, "signoff_outbox_messages", kind="email", status="pending") == 2
    assert value(samples, "signoff_outbox_messages", kind="email", status="failed") == 1
    assert value(samples, "signoff_outbox_messages", kind="webhook", status="failed") == 2
    assert ("signoff_outbox_messages",
            (("kind", "webhook"), ("status", "pending"))) in samples  # 0, but there
    assert value(samples, "signoff_outbox_database_up") == 1


def test_queue_depth_is_read_from_redis_at_scrape(app_config, clean_redis, database_url):
    from portal import create_app

    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": database_url,
                      "REDIS_URL": clean_redis})
    queue = Queue("signoff", connection=Redis.from_url(clean_redis))
    for _ in range(3):
        queue.enqueue("jobs.periodic.every_minute")
    with app.app_context():
        samples = scrape(app)
    assert value(samples, "signoff_queue_jobs", queue="signoff", state="queued") == 3
    assert value(samples, "signoff_queue_redis_up") == 1
    queue.empty()
    with app.app_context():
        assert value(scrape(app), "signoff_queue_jobs", queue="signoff", state="queued") == 0


def test_a_dead_redis_is_said_and_the_scrape_still_answers(app_config, database_url):
    from portal import create_app

    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": database_url,
                      "REDIS_URL": "redis://127.0.0.1:1/0"})  # nothing listens on port 1
    with app.app_context():
        samples = scrape(app)
    assert value(samples, "signoff_queue_redis_up") == 0


def test_the_sweep_and_the_certificate_are_timed_where_they_run(sealed, app, make_deliverable):
    before = scrape(app)
    jobs.periodic.every_minute()
    make_deliverable(S.APPROVED)  # its certificate is issued by the job, after the commit
    samples = scrape(app)
    for name in ("signoff_reminder_sweep_duration_seconds_count",
                 "signoff_certificate_issue_duration_seconds_count"):
        assert value(samples, name) - value(before, name) >= 1, name
    assert value(samples, "signoff_certificate_issue_duration_seconds_count") - value(
        before, "signoff_certificate_issue_duration_seconds_count") == 1


def test_a_workers_horses_share_its_sample_files(jobs_config, app, run_worker, monkeypatch,
                                                tmp_path):
    """RQ forks a work horse per job; each writing files under its own pid would leave one
    set per job behind (the sweep alone: one a minute). A worker's horses write its own."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))  # for the worker process
    queue = job_queue()
    for n in range(3):
        queue.enqueue("jobs.periodic.every_minute", job_id=f"sweep-{n}")
    run_worker.burst()
    files = sorted(p.name for p in folder.iterdir())
    assert files, "no sample files written"
    assert len({name.split("_", 1)[1] for name in files}) == 1, files  # one process's files
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(folder))
    assert registry.get_sample_value("signoff_reminder_sweep_duration_seconds_count") == 3
