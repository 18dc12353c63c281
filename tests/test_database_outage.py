"""The database goes away under load and comes back (issue 10.4, SPEC 8): while it is away the
API answers 503 `service_unavailable` with the error body and Retry-After, pages answer a plain
"try again shortly" page, nothing answers with a traceback or gunicorn's HTML; once PostgreSQL
is back, the service answers again within 2 seconds. A private PostgreSQL server is stopped and
started for real (tests/private_postgres.py)."""

import os
import re
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.app_server import ROOT, AppServer
from tests.private_postgres import PrivatePostgres

pytestmark = pytest.mark.postgres

RECOVERY_SECONDS = 2.0


def _cli(database_url: str, *argv: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "fiscobridge.cli", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class Load(threading.Thread):
    """Closed-loop API requests, each answer recorded with its time."""

    def __init__(self, url: str, token: str):
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        self.answers: list[tuple[float, int, str, str]] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                response = self.client.get("/api/v1/subscriptions")
                code = response.json()["error"]["code"] if response.status_code >= 400 else ""
                self.answers.append((time.monotonic(), response.status_code, response.headers["content-type"], code))
            except (httpx.HTTPError, ValueError) as error:
                self.answers.append((time.monotonic(), 0, type(error).__name__, ""))
            time.sleep(0.02)


def test_the_service_answers_503_while_postgresql_is_away_and_recovers(tmp_path):
    with PrivatePostgres() as postgres:
        _cli(postgres.url, "manage", "migrate", "--no-input", "-v", "0")
        demo = _cli(postgres.url, "demo")
        token = demo.strip().splitlines()[-1].strip()
        email, password = re.search(r"customer\s+(\S+@\S+)\s+(\S+)", demo).groups()

        with AppServer(workers=2, database_url=postgres.url, env={"DATABASE_CONN_MAX_AGE": "60"}) as server:
            browser = httpx.Client(base_url=server.url, timeout=10)
            form = browser.get("/login/").text
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
            signed_in = browser.post(
                "/login/", data={"username": email, "password": password, "csrfmiddlewaretoken": csrf}
            )
            assert signed_in.status_code == 302, signed_in.text[-500:]
            assert browser.get("/pos/").status_code == 200

            load = Load(server.url, token)
            load.start()
            time.sleep(1)
            postgres.stop()
            time.sleep(1.5)
            page = browser.get("/pos/")
            api = httpx.get(f"{server.url}/api/v1/subscriptions", headers={"Authorization": f"Bearer {token}"})
            ready = httpx.get(f"{server.url}/readyz")
            live = httpx.get(f"{server.url}/healthz")
            postgres.start()
            back_at = time.monotonic()
            time.sleep(RECOVERY_SECONDS + 1)
            load.running = False
            load.join(timeout=15)
            log = server.log_text()

    assert page.status_code == 503 and "Try again shortly" in page.text and "Traceback" not in page.text
    assert page.headers["Retry-After"]
    assert api.status_code == 503 and api.json()["error"]["code"] == "service_unavailable"
    assert api.headers["Retry-After"]
    assert ready.status_code == 503 and ready.json()["failing"] == ["database"]
    assert live.status_code == 200  # liveness does not depend on the database

    during = [a for a in load.answers if a[0] < back_at]
    after = [a for a in load.answers if a[0] >= back_at]
    statuses = {status for _, status, _, _ in load.answers}
    assert statuses <= {200, 503}, sorted(statuses)  # never a 500, never a dropped connection
    assert any(status == 503 for _, status, _, _ in during)
    assert all(kind.startswith("application/json") for _, _, kind, _ in load.answers)
    assert {code for _, status, _, code in load.answers if status == 503} == {"service_unavailable"}
    first_ok = next(moment for moment, status, _, _ in after if status == 200)
    assert first_ok - back_at <= RECOVERY_SECONDS, first_ok - back_at
    assert all(status == 200 for moment, status, _, _ in after if moment > first_ok)
    assert "WORKER TIMEOUT" not in log
