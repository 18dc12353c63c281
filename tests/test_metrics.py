"""GET /metrics (issue 11.6): protected by METRICS_TOKEN, counters that move where things happen,
figures read from the database, labels that never hold an id, and sums over gunicorn workers."""

import os
import re
import shutil
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import time_machine
from django.test import Client
from django_tasks_db.models import DBTaskResult
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from fiscobridge.core import clock
from fiscobridge.keys.codes import generate_code
from fiscobridge.pos.models import Certificate
from tests.app_server import AppServer
from tests.factories import CERTIFICATES, activate, new_pfx, start_checkout_page, upload_pfx, validate
from tests.stripe_fake import post_event

TOKEN = "metrics-token-0123456789"


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape_text(client=None, token=TOKEN) -> str:
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.content.decode()


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, ((label, value), …)): value} of a scrape."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(figures: dict, name: str, **labels) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


# --- protection --------------------------------------------------------------------------------


def test_metrics_is_off_without_a_token(db, settings):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer wrong-token", f"Bearer {TOKEN[:-1]}é"],
)
def test_metrics_refuses_a_missing_or_wrong_token(db, metrics_on, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = Client().get("/metrics", **headers)
    assert response.status_code == 404
    assert b"fiscobridge_" not in response.content


def test_metrics_serves_the_text_format_with_the_token(db, metrics_on):
    text = scrape_text()
    families = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "fiscobridge_http_request_duration_seconds",
        "fiscobridge_key_activations",
        "fiscobridge_key_redemption_failures",
        "fiscobridge_key_redemption_lockouts",
        "fiscobridge_stripe_events_failed",
        "fiscobridge_tasks_queued",
        "fiscobridge_tasks_oldest_queued_age_seconds",
        "fiscobridge_tasks_failed_last_hour",
        "fiscobridge_certificates_active",
        "fiscobridge_seats_used",
        "fiscobridge_seats_total",
    } <= families
    assert Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


# --- counters ---------------------------------------------------------------------------------


def test_an_activation_and_refused_attempts_move_the_counters(metrics_on, customer, issue):
    [code] = issue()
    before = samples(scrape_text())
    assert activate(customer, code).status_code == 201
    assert validate(customer, generate_code("pos")).status_code == 409  # unknown: not_available
    assert validate(customer, "POS-0000").status_code == 400
    assert activate(customer, code).status_code == 409  # already_activated
    after = samples(scrape_text())

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("fiscobridge_key_activations_total", product="pos") == 1
    assert moved("fiscobridge_key_activations_total", product="int") == 0
    failures = "fiscobridge_key_redemption_failures_total"
    assert moved(failures, action="validate", code="not_available") == 1
    assert moved(failures, action="validate", code="invalid_format") == 1
    assert moved(failures, action="activate", code="already_activated") == 1
    assert moved(failures, action="activate", code="not_available") == 0
    route = "api/v1/keys/activate"
    count = "fiscobridge_http_request_duration_seconds_count"
    assert moved(count, route=route, method="POST", status="2xx") == 1
    assert moved(count, route=route, method="POST", status="4xx") == 1


def test_a_lockout_is_counted_once_by_scope(metrics_on, customer, settings):
    settings.REDEEM_SESSION_FAILURE_LIMIT = 3
    lockouts = "fiscobridge_key_redemption_lockouts_total"
    before = value(samples(scrape_text()), lockouts, scope="session")
    for _ in range(3):
        assert validate(customer, generate_code("pos")).status_code == 409
    assert validate(customer, generate_code("pos")).status_code == 429
    after = samples(scrape_text())
    assert value(after, lockouts, scope="session") - before == 1
    assert value(after, "fiscobridge_key_redemption_failures_total", action="validate", code="too_many_attempts") >= 1


def test_a_failed_stripe_event_is_counted(metrics_on, stripe_on, customer):
    failed = "fiscobridge_stripe_events_failed_total"
    kind = "checkout.session.completed"
    before = value(samples(scrape_text()), failed, type=kind)
    # Stripe is unreachable while the event is handled (as in tests/test_billing_webhooks.py).
    event = stripe_on.complete_checkout(start_checkout_page(customer, seats=2))
    stripe_on.fail_next("GET", r"/v1/subscriptions/\w+")
    assert post_event(Client(), event).status_code == 500
    assert value(samples(scrape_text()), failed, type=kind) - before == 1
    assert post_event(Client(), event).status_code == 200  # redelivered and handled: not a failure
    assert value(samples(scrape_text()), failed, type=kind) - before == 1


# --- figures read at scrape time ---------------------------------------------------------------


def test_database_figures_count_tasks_certificates_and_seats(metrics_on, customer, issue):
    [code] = issue(seats=3)
    [integration] = issue(product="int", tier="growth", seats=2)
    assert activate(customer, code).status_code == 201  # its e-mail waits as a task
    assert activate(customer, integration, "int").status_code == 201
    assert upload_pfx(customer, new_pfx()).status_code == 201
    created = customer.client.post(
        "/api/v1/integrations/connections",
        {"type": "xero", "tier": "growth", "name": "Books"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    figures = samples(scrape_text())
    assert value(figures, "fiscobridge_certificates_active") == 1
    assert value(figures, "fiscobridge_seats_used", package="pos") == 1
    assert value(figures, "fiscobridge_seats_used", package="growth") == 1
    assert value(figures, "fiscobridge_seats_used", package="scale") == 0
    assert value(figures, "fiscobridge_seats_total", package="pos") == 3
    assert value(figures, "fiscobridge_seats_total", package="growth") == 2
    assert value(figures, "fiscobridge_seats_total", package="starter") == 0
    assert value(figures, "fiscobridge_tasks_queued") >= 1
    assert value(figures, "fiscobridge_tasks_oldest_queued_age_seconds") >= 0
    assert ("fiscobridge_tasks_failed_last_hour", ()) in figures

    Certificate.objects.update(status="revoked", revoked_at="2027-01-01T00:00:00Z")
    figures = samples(scrape_text())
    assert value(figures, "fiscobridge_certificates_active") == 0
    assert value(figures, "fiscobridge_seats_used", package="pos") == 0


def test_the_oldest_due_task_age_counts_from_its_enqueueing_or_its_run_after(metrics_on, customer, issue):
    age = "fiscobridge_tasks_oldest_queued_age_seconds"
    assert value(samples(scrape_text()), age) == 0  # nothing waiting
    with time_machine.travel("2027-03-01 12:00:00Z", tick=False) as travel:
        [code] = issue()
        assert activate(customer, code).status_code == 201  # its e-mail task, due at once
        travel.shift(timedelta(minutes=10))
        assert value(samples(scrape_text()), age) == 600
        # A retry scheduled for later is not late yet, and one due since 15 minutes is.
        retry = DBTaskResult.objects.get()
        DBTaskResult.objects.filter(pk=retry.pk).update(run_after=clock.now() + timedelta(minutes=5))
        assert value(samples(scrape_text()), age) == 0
        DBTaskResult.objects.filter(pk=retry.pk).update(run_after=clock.now() - timedelta(minutes=15))
        assert value(samples(scrape_text()), age) == 900
        assert value(samples(scrape_text()), "fiscobridge_tasks_queued") == 1


def test_labels_hold_url_patterns_never_ids(metrics_on, customer, reseller, issue):
    [seats] = issue()
    assert activate(customer, seats).status_code == 201
    upload = upload_pfx(customer, new_pfx())
    uid = upload.json()["uid"]
    assert customer.client.get(f"{CERTIFICATES}/{uid}/entitlement").status_code == 200
    assert customer.client.post(f"{CERTIFICATES}/{uid}/revoke").status_code == 200
    assert customer.client.get(f"{CERTIFICATES}/NOSUCHUID42/entitlement").status_code == 404
    [code] = issue()
    keys = reseller.client.get("/api/v1/partner/keys").json()["items"]
    key_id = keys[0]["id"]
    revoked = reseller.client.post(f"/api/v1/partner/keys/{key_id}/revoke", {"reason": "x"}, "application/json")
    assert revoked.status_code == 200, revoked.content
    Client().get("/no/such/page/ZXCV98765/")
    text = scrape_text()
    for raw in (uid, "NOSUCHUID42", "ZXCV98765", f"keys/{key_id}/", code):
        assert raw not in text
    routes = {labels["route"] for labels in _labels(text)}
    assert "api/v1/pos/certificates/<uid>/revoke" in routes
    assert "api/v1/pos/certificates/<uid>/entitlement" in routes
    assert "api/v1/partner/keys/<int:key_id>/revoke" in routes
    assert "unmatched" in routes
    assert all(re.fullmatch(r"[a-z0-9_/.<>:-]*|unmatched", route) for route in routes), routes
    methods = {labels["method"] for labels in _labels(text)}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


def _labels(text: str) -> list[dict]:
    """The labels of the request histogram's samples."""
    return [
        sample.labels
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if "route" in sample.labels
    ]


# --- several gunicorn workers ----------------------------------------------------------------------


def _healthz_count(figures: dict) -> float:
    return value(
        figures, "fiscobridge_http_request_duration_seconds_count", route="healthz", method="GET", status="2xx"
    )


def _per_worker_healthz(directory: Path) -> dict[str, float]:
    """Requests to /healthz each worker process has counted, from its own file."""
    counts = {}
    for path in directory.glob("histogram_*.db"):
        for family in MultiProcessCollector.merge([str(path)], accumulate=True):
            for sample in family.samples:
                if sample.name.endswith("_count") and sample.labels.get("route") == "healthz":
                    counts[path.stem.split("_")[-1]] = counts.get(path.stem.split("_")[-1], 0) + sample.value
    return counts


@pytest.mark.django_db(transaction=True)
def test_two_gunicorn_workers_are_summed_in_every_scrape():
    directory = Path(tempfile.mkdtemp(prefix="fiscobridge-metrics-test-"))
    (directory / "histogram_999999.db").write_bytes(b"left over from an earlier run")
    env = {"METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    with AppServer(workers=2, env=env) as server:
        assert not (directory / "histogram_999999.db").exists()  # emptied at start

        def scrape() -> dict:
            response = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            assert response.status_code == 200, response.text
            return samples(response.text)

        start = _healthz_count(scrape())
        sent = 0

        def hit(n: int) -> None:
            for _ in range(n):
                assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200

        # Requests from several threads at once, until both workers have answered some.
        for _ in range(20):
            threads = [threading.Thread(target=hit, args=(10,)) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            sent += 40
            if len([n for n in _per_worker_healthz(directory).values() if n > 0]) >= 2:
                break
        per_worker = _per_worker_healthz(directory)
        assert len([n for n in per_worker.values() if n > 0]) >= 2, per_worker
        # Whichever worker answers the scrape, it reports the sum over both.
        totals = {_healthz_count(scrape()) - start for _ in range(6)}
        assert totals == {sent}, (totals, sent, per_worker)
        assert sum(per_worker.values()) - start == sent
    assert os.path.isdir(directory)  # a directory given by the operator is left in place
    shutil.rmtree(directory)
