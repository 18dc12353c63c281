"""Request ids and JSON log lines (issue 11.5): X-Request-Id on every answer, the request's ids
and URL pattern on every line it causes, one access line per request, a task run's own id, and
one JSON object per line on a real server at DEBUG level. (No secret in those lines:
tests/test_no_secrets_in_server_logs.py, in both formats.)"""

import io
import json
import logging
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from django.test import Client

from fiscobridge.core.json_log import JsonLineFormatter
from fiscobridge.core.log_context import LogContextFilter
from fiscobridge.core.redact import RedactSecrets
from tests import app_server
from tests.app_server import AppServer
from tests.factories import CERTIFICATES, PFX_PASSWORD, activate, new_pfx, post_json, run_tasks

NEW_ID = re.compile(r"[0-9a-f]{32}")
FIELDS = {"time", "level", "logger", "message", "request_id", "user_id", "account_id", "partner_id", "route"}


# --- X-Request-Id ------------------------------------------------------------------------------


def test_every_answer_carries_a_new_request_id(db):
    first = Client().get("/healthz")
    second = Client().get("/healthz")
    assert NEW_ID.fullmatch(first["X-Request-Id"]) and NEW_ID.fullmatch(second["X-Request-Id"])
    assert first["X-Request-Id"] != second["X-Request-Id"]
    # Answers made by the API's error translation and by Django's 404 carry one too.
    assert NEW_ID.fullmatch(Client().get("/api/v1/no-such-thing")["X-Request-Id"])
    assert NEW_ID.fullmatch(Client().get("/no/such/page/")["X-Request-Id"])


@pytest.mark.parametrize("incoming", ["trace-0123456789", "a" * 128, "lb.3f2a_77-Zz", "0123abcd"])
def test_a_well_formed_incoming_request_id_is_kept(db, incoming):
    assert Client().get("/healthz", HTTP_X_REQUEST_ID=incoming)["X-Request-Id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["", "short", "a" * 129, "has spaces 12345", "<script>x</script>", "id\r\nSet-Cookie:x", "ré-0123456789"],
)
def test_a_malformed_incoming_request_id_is_replaced(db, incoming):
    answered = Client().get("/healthz", HTTP_X_REQUEST_ID=incoming)["X-Request-Id"]
    assert NEW_ID.fullmatch(answered) and answered != incoming


# --- the JSON formatter --------------------------------------------------------------------------


def _format(record: logging.LogRecord) -> dict:
    LogContextFilter().filter(record)
    RedactSecrets().filter(record)
    return json.loads(JsonLineFormatter().format(record))


def test_a_json_line_has_every_field_and_no_secret_even_in_extras_and_tracebacks():
    record = logging.LogRecord(
        "fiscobridge.x", logging.ERROR, __file__, 1, "failed for %s", ("POS-7KQM-3HXD-9TWB",), None
    )
    try:
        raise ValueError("value int7kqm3hxd9twb token=abcdef123456")
    except ValueError:
        record.exc_info = sys.exc_info()
    record.request = "<WSGIRequest: GET '/partner/keys/?q=POS-7KQM-3HXD-9TWB'>"  # as Django's loggers add it
    record.detail = {"password": "hunter2!", "nested": ["Bearer fbt_0a1b2c_s3cr3t-value"]}
    line = _format(record)
    assert set(line) >= FIELDS
    assert (line["level"], line["logger"], line["request_id"], line["route"]) == ("ERROR", "fiscobridge.x", None, None)
    moment = datetime.fromisoformat(line["time"])
    assert moment.utcoffset() == timedelta(0)
    assert "request" not in line  # the raw path and query: the route and the access line say it without
    text = json.dumps(line)
    for secret in ("7KQM", "7kqm", "abcdef123456", "hunter2!", "s3cr3t-value"):
        assert secret not in text, text
    assert "ValueError" in line["exc_info"]


@pytest.fixture
def json_log():
    """The app's handler as LOG_FORMAT=json makes it, on the root logger, into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(LogContextFilter())
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_lines_written_during_a_request_carry_its_id_and_who_is_calling(customer, issue, json_log):
    [code] = issue()
    response = post_json(
        customer.client,
        "/api/v1/keys/activate",
        {"key": code, "product": "pos"},
        HTTP_X_REQUEST_ID="trace-activate-0001",
    )
    assert response.status_code == 201
    lines = [line for line in json_log() if line["request_id"] == "trace-activate-0001"]
    [access] = [line for line in lines if line["logger"] == "fiscobridge.request"]
    assert access["level"] == "INFO"
    assert (access["route"], access["method"], access["status"]) == ("api/v1/keys/activate", "POST", 201)
    assert access["duration_ms"] >= 0
    assert (access["user_id"], access["account_id"], access["partner_id"]) == (
        customer.user.pk,
        customer.account.pk,
        None,
    )
    refused = customer.client.get(f"{CERTIFICATES}/NOSUCHUID42/entitlement", HTTP_X_REQUEST_ID="trace-missing-0002")
    assert refused.status_code == 404
    lines = [line for line in json_log() if line["request_id"] == "trace-missing-0002"]
    # Django's own warning about the 404 belongs to the request too, with its pattern.
    assert {line["logger"] for line in lines} >= {"django.request", "fiscobridge.request"}
    assert {line["route"] for line in lines} == {"api/v1/pos/certificates/<uid>/entitlement"}
    assert {line["account_id"] for line in lines} == {customer.account.pk}


def test_a_task_run_has_its_own_id(customer, issue, json_log):
    [code] = issue()
    assert activate(customer, code).status_code == 201
    run_tasks()  # the activation's e-mails
    finished = [line for line in json_log() if line["logger"] == "django_tasks" and "SUCCESSFUL" in line["message"]]
    assert finished, json_log()
    started = [line for line in json_log() if line["logger"] == "django_tasks" and "RUNNING" in line["message"]]
    # The library's "started" line of each run carries the same id as its "finished" line.
    assert sorted(line["request_id"] for line in started) == sorted(line["request_id"] for line in finished)
    ids = {line["request_id"] for line in finished}
    request_ids = {line["request_id"] for line in json_log() if line["logger"] == "fiscobridge.request"}
    assert all(NEW_ID.fullmatch(i or "") for i in ids) and not ids & request_ids
    assert len(ids) == len(finished)  # one id per run
    assert all(line["task_id"] in line["message"] for line in finished)
    # Outside the run, the id is gone again.
    logging.getLogger("fiscobridge.x").warning("after")
    assert json_log()[-1]["request_id"] is None


# --- a real server ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_json_lines_on_a_real_server_at_debug(customer, reseller, issue):
    env = {
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    [code] = issue()
    with AppServer(workers=1, env=env) as server:
        shop = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {customer.token}"}, timeout=30)
        partner = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {reseller.token}"}, timeout=30)
        answers = [
            shop.post("/api/v1/keys/activate", json={"key": code, "product": "pos"}),
            shop.post(
                CERTIFICATES,
                files={"file": ("pos.pfx", new_pfx(), "application/x-pkcs12")},
                data={"password": PFX_PASSWORD},
            ),
        ]
        uid = answers[1].json()["uid"]
        answers += [
            shop.get(f"{CERTIFICATES}/{uid}/entitlement", headers={"X-Request-Id": "trace-entitlement-01"}),
            shop.post("/api/v1/keys/validate", json={"key": "POS-nonsense", "product": "pos"}),
            partner.get("/api/v1/partner/keys"),
            httpx.get(f"{server.url}/no/such/page/", headers={"X-Request-Id": "bad id"}, timeout=30),
        ]
        output = server.log_text()

    assert [a.status_code for a in answers] == [201, 201, 200, 400, 200, 404]
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # every line parses
    assert len(lines) > len(answers) and all(isinstance(line, dict) for line in lines)
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
        assert datetime.fromisoformat(line["time"]).utcoffset() == timedelta(0), line
    app_lines = [line for line in lines if not line["logger"].startswith("gunicorn")]
    assert all(set(line) >= FIELDS for line in app_lines)
    access = {line["request_id"]: line for line in lines if line["logger"] == "fiscobridge.request"}
    for answer in answers:
        line = access[answer.headers["X-Request-Id"]]  # one access line per answer, by its id
        assert line["status"] == answer.status_code and line["method"] == answer.request.method
        assert isinstance(line["duration_ms"], int | float)
    assert answers[2].headers["X-Request-Id"] == "trace-entitlement-01"
    assert answers[5].headers["X-Request-Id"] != "bad id"
    entitlement = access["trace-entitlement-01"]
    assert entitlement["route"] == "api/v1/pos/certificates/<uid>/entitlement"
    assert (entitlement["user_id"], entitlement["account_id"]) == (customer.user.pk, customer.account.pk)
    assert access[answers[4].headers["X-Request-Id"]]["partner_id"] == reseller.partner.pk
    assert access[answers[5].headers["X-Request-Id"]]["route"] is None
    assert not any(uid in str(line.get("route")) for line in lines)


@pytest.mark.django_db(transaction=True)
def test_json_lines_from_a_real_worker(customer, issue):
    [code] = issue()
    assert activate(customer, code).status_code == 201  # its e-mail waits as a task
    environment = {
        **os.environ,
        "DATABASE_URL": app_server.current_database_url(),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    result = subprocess.run(
        [sys.executable, "-m", "fiscobridge.cli", "worker", "--batch"],
        cwd=Path(__file__).resolve().parent.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert all(set(line) >= FIELDS for line in lines), lines
    # The worker also enqueues its due periodic jobs (lines outside any run), then runs everything.
    runs = [line for line in lines if line["logger"] == "django_tasks" and "state=" in line["message"]]
    assert {line["message"].split("state=")[-1] for line in runs} == {"RUNNING", "SUCCESSFUL"}, runs
    ids = {}
    for line in runs:
        assert NEW_ID.fullmatch(line["request_id"]) and line["task_id"] in line["message"]
        ids.setdefault(line["task_id"], set()).add(line["request_id"])
    assert len(ids) > 1 and all(len(run_ids) == 1 for run_ids in ids.values())  # one id per run
    assert len(set.union(*ids.values())) == len(ids)  # and each run its own
