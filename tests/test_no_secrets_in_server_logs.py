"""No secret in a URL or a log (issue 10.2), checked on a real server at DEBUG level, in plain
lines and in JSON lines (LOG_FORMAT=json, issue 11.5): issue keys, search by a full key (API and
page), activate, upload a certificate, ask for a password reset, send a few bad requests; then
the server's whole output (gunicorn's access and error logs and the app's log) must hold no key,
token or password, and no reset link."""

import json
import logging

import httpx
import pytest

from fiscobridge.core.redact import RedactSecrets, redact
from fiscobridge.keys.codes import squash
from tests.app_server import AppServer
from tests.factories import PASSWORD, PFX_PASSWORD, new_pfx

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_a_full_scenario_leaves_no_secret_in_the_server_output(customer, reseller, log_format):
    env = {
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": log_format,
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    with AppServer(workers=1, env=env) as server:
        partner = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {reseller.token}"}, timeout=30)
        shop = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {customer.token}"}, timeout=30)
        issued = partner.post("/api/v1/partner/keys", json={"product": "pos", "seats": 2, "months": 12, "quantity": 3})
        assert issued.status_code == 201, issued.text
        codes = [key["code"] for key in issued.json()["keys"]]

        # A full key in a query string: refused by the API, reduced to its last group by the page.
        refused = partner.get("/api/v1/partner/keys", params={"q": codes[0]})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "key_in_query"
        assert partner.post("/api/v1/partner/keys/lookup", json={"key": codes[0]}).status_code == 200
        # The page reduces it (tests/test_hardening_inputs.py); the server's own log is checked here.
        anonymous = httpx.get(f"{server.url}/partner/keys/", params={"q": codes[1]}, timeout=30)
        assert anonymous.status_code == 302  # to the login page, its `next` holding the query

        assert shop.post("/api/v1/keys/validate", json={"key": codes[0], "product": "pos"}).status_code == 200
        assert shop.post("/api/v1/keys/activate", json={"key": codes[0], "product": "pos"}).status_code == 201
        assert shop.post("/api/v1/keys/activate", json={"key": squash(codes[2]), "product": "pos"}).status_code == 201
        upload = shop.post(
            "/api/v1/pos/certificates",
            files={"file": ("pos.pfx", new_pfx(), "application/x-pkcs12")},
            data={"password": PFX_PASSWORD},
        )
        assert upload.status_code == 201, upload.text
        wrong = shop.post(
            "/api/v1/pos/certificates",
            files={"file": ("pos.pfx", new_pfx(), "application/x-pkcs12")},
            data={"password": "Wrong-Passw0rd-99"},
        )
        assert wrong.status_code == 400
        httpx.post(f"{server.url}/password_reset/", data={"email": customer.user.email}, timeout=30)
        # Bad input that used to reach the error log with its values.
        shop.get("/api/v1/pos/certificates", params={"taxpayer": f"{codes[1]}\x00"})
        shop.post(
            "/api/v1/keys/activate", content=f'{{"key": "{codes[1]}"', headers={"Content-Type": "application/json"}
        )
        log = server.log_text()

    assert "POST /api/v1/keys/activate" in log  # the access log was written, at DEBUG
    if log_format == "json":
        # Every line is a JSON object (tests/test_request_logs.py checks their fields): the
        # secrets are looked for in the decoded values too, where escapes cannot hide them.
        lines = [json.loads(line) for line in log.splitlines() if line.strip()]
        assert all(isinstance(line, dict) for line in lines)
        log += "\n".join(str(value) for line in lines for value in line.values())
    secrets = [*codes, *(squash(code) for code in codes), customer.token, reseller.token, PASSWORD, PFX_PASSWORD]
    secrets.append("Wrong-Passw0rd-99")
    leaked = [secret for secret in secrets if secret.lower() in log.lower()]
    assert leaked == [], [log[max(0, log.lower().find(s.lower()) - 200) :][:400] for s in leaked]
    assert "/reset/" not in log


def test_the_redaction_filter_rewrites_what_looks_like_a_secret():
    samples = {
        "GET /partner/keys/?q=POS-7KQM-3HXD-9TWB HTTP/1.1": "POS-7KQM-3HXD-9TWB",
        "key int7kqm3hxd9twb refused": "int7kqm3hxd9twb",
        "Authorization: Bearer fbt_0a1b2c3d4e5f_s3cr3t-t0ken_value": "s3cr3t-t0ken_value",
        "token=abcdef123456&x=1": "abcdef123456",
        'body {"password": "hunter2!", "name": "x"}': "hunter2!",
        "new_password1=Sup3rSecret&new_password2=Sup3rSecret": "Sup3rSecret",
        "GET /reset/MQ/ch8x2k-0123456789abcdef/ HTTP/1.1": "ch8x2k-0123456789abcdef",
    }
    for line, secret in samples.items():
        assert secret not in redact(line), line
    assert redact("POST /api/v1/integrations/connections 201") == "POST /api/v1/integrations/connections 201"

    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed for %s", ("POS-7KQM-3HXD-9TWB",), None)
    try:
        raise ValueError("value POS-7KQM-3HXD-9TWB")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactSecrets().filter(record)
    assert "7KQM" not in record.getMessage() and "7KQM" not in record.exc_text
