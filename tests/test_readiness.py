"""Readiness (`/readyz`, issue 11.4): the database answers, every migration is applied, a task
worker is alive; a 503 names the failing part. Liveness (`/healthz`) never touches any of it."""

import os
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest
import time_machine
from django.test import Client

from fiscobridge.core import clock
from fiscobridge.tasks.models import WorkerHeartbeat
from fiscobridge.tasks.worker import heartbeat
from tests.app_server import ROOT, AppServer


def test_ready_when_a_worker_has_reported(db, settings):
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["worker"]
    assert "start `fiscobridge worker`" in response.json()["checks"]["worker"]
    heartbeat("host-a:1")
    ready = Client().get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ok": True, "failing": [], "checks": {"database": "ok", "migrations": "ok", "worker": "ok"}}
    assert "no-cache" in ready["Cache-Control"]


def test_a_silent_worker_makes_the_service_not_ready(db, settings):
    settings.READY_WORKER_MAX_AGE_SECONDS = 120
    heartbeat("host-a:1")
    with time_machine.travel(clock.now() + timedelta(minutes=3)):
        response = Client().get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["worker"].startswith("the newest task worker heartbeat is 180 s old")
        heartbeat("host-b:2")  # another worker is alive: ready again
        assert Client().get("/readyz").status_code == 200
    with time_machine.travel(clock.now() + timedelta(days=2)):
        heartbeat("host-c:3")  # a day of silence: the old workers are forgotten
        assert list(WorkerHeartbeat.objects.values_list("worker", flat=True)) == ["host-c:3"]


@pytest.mark.django_db(transaction=True)
def test_unapplied_migrations_make_the_service_not_ready(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'behind.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": database_url}
    migrate = [sys.executable, "-m", "fiscobridge.cli", "manage", "migrate", "--no-input", "-v", "0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, timeout=300)
    # One release behind: the newest migration of the tasks app is not applied yet.
    subprocess.run([*migrate, "fiscobridge_tasks", "0001"], cwd=ROOT, env=env, check=True, timeout=300)
    with AppServer(workers=1, database_url=database_url) as server:
        response = httpx.get(f"{server.url}/readyz", timeout=30)
        live = httpx.get(f"{server.url}/healthz", timeout=30)
    assert response.status_code == 503
    body = response.json()
    assert "migrations" in body["failing"]
    assert body["checks"]["migrations"] == "1 unapplied migration(s): run `fiscobridge manage migrate`"
    assert live.status_code == 200
