"""Several nodes on one PostgreSQL database (issue 11.10): two web servers and two task workers,
each a real process. One key raced from both servers is redeemed once; a lockout started through
one server holds on the other; every queued e-mail is sent exactly once."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import pytest
from django.conf import settings as django_settings

from fiscobridge.accounts.services import create_api_token
from fiscobridge.keys.codes import generate_code
from fiscobridge.notifications.models import EmailStatus, OutboundEmail
from fiscobridge.subscriptions.models import Subscription
from tests.app_server import ROOT, AppServer, current_database_url
from tests.smtp_server import SmtpSink

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ACTIVATE = "/api/v1/keys/activate"


def _post(url: str, token: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}{ACTIVATE}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _start_worker(sink: SmtpSink) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": current_database_url(),
        "EMAIL_HOST": sink.host,
        "EMAIL_PORT": str(sink.port),
        "EMAIL_USE_TLS": "false",
        "TASKS_SCHEDULE_TICK_SECONDS": "1",
    }
    argv = [sys.executable, "-m", "fiscobridge.cli", "worker", "--interval", "0.2", "--quiet"]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_two_web_servers_and_two_workers_on_one_database(customer, outsider, issue):
    sink = SmtpSink()
    workers = [_start_worker(sink), _start_worker(sink)]
    try:
        with AppServer(workers=2) as first, AppServer(workers=2) as second:
            urls = [first.url, second.url]

            # One key raced from both servers by two accounts: one redemption.
            [contested] = issue()
            barrier, answers = threading.Barrier(12), [None] * 12
            racers = [create_api_token(user=persona.user).plain for persona in (customer, outsider)]

            def race(index: int) -> None:
                token = racers[index % 2]
                barrier.wait(timeout=30)
                answers[index] = _post(urls[index % 2], token, {"key": contested, "product": "pos"}).status_code

            threads = [threading.Thread(target=race, args=(i,)) for i in range(12)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert Counter(answers)[201] == 1, answers
            # The losing account's attempts are failures (not_available), so past its session limit: 429.
            assert set(answers) <= {201, 409, 429}, answers
            assert Subscription.objects.count() == 1

            # A lockout started through one server holds on the other (a fresh token: a new session).
            token = create_api_token(user=outsider.user).plain
            limit = django_settings.REDEEM_SESSION_FAILURE_LIMIT
            for _ in range(limit):
                failed = _post(first.url, token, {"key": generate_code("pos"), "product": "pos"})
                assert failed.json()["error"]["code"] == "not_available"
            locked = _post(second.url, token, {"key": generate_code("pos"), "product": "pos"})
            assert locked.status_code == 429 and locked.json()["error"]["code"] == "too_many_attempts"

            # Activations through both servers; both workers send their e-mails: each once.
            for index, code in enumerate(issue(quantity=6)):
                assert _post(urls[index % 2], customer.token, {"key": code, "product": "pos"}).status_code == 201

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and OutboundEmail.objects.exclude(status=EmailStatus.SENT).exists():
            time.sleep(0.5)
        time.sleep(1)  # a duplicate send, if there were one, would land now
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        sink.close()
    sent = OutboundEmail.objects.filter(status=EmailStatus.SENT)
    assert sent.count() == OutboundEmail.objects.count() == 2 * 7  # customer and partner, per activation
    delivered = Counter((message.recipients[0].strip("<>"), _subject(message.data)) for message in sink.messages)
    expected = Counter((row.recipients[0], row.subject) for row in sent)
    assert delivered == expected, (delivered, expected)


def _subject(data: bytes) -> str:
    from email import message_from_bytes
    from email.header import decode_header, make_header

    return str(make_header(decode_header(message_from_bytes(data)["Subject"])))
