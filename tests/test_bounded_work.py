"""Bounded work per request (issue 10.1): a certificate file cannot keep a worker busy, and a body
is refused from its headers before anything reads it."""

import os
import socket
import threading
import time

import httpx
import pytest
from asn1crypto import pkcs12 as asn1_pkcs12

from fiscobridge.core.bounded import TimeLimitExceeded, call_with_time_limit
from fiscobridge.pos.errors import CertificateTooCostly
from fiscobridge.pos.models import Certificate
from fiscobridge.pos.pkcs12 import kdf_iterations, parse_pkcs12
from fiscobridge.pos.services import upload_certificate
from tests.app_server import AppServer
from tests.factories import CERTIFICATES, PFX_PASSWORD, assert_error, grant, new_pfx, upload_pfx

HUNDRED_MILLION = 100_000_000


def with_mac_rounds(data: bytes, rounds: int) -> bytes:
    """The same PFX asking for `rounds` rounds to derive its MAC key (OpenSSL derives it first)."""
    pfx = asn1_pkcs12.Pfx.load(data)
    pfx["mac_data"]["iterations"] = rounds
    return pfx.dump(force=True)


@pytest.fixture(scope="module")
def costly_pfx() -> bytes:
    return with_mac_rounds(new_pfx(org="Costly SA"), HUNDRED_MILLION)


# --- reading the counts -----------------------------------------------------------------------


def test_the_counts_of_an_ordinary_file_are_read_without_the_password():
    assert kdf_iterations(new_pfx()) == [2048, 2048, 2048]  # MAC, encrypted certificates, key


def test_a_file_asking_for_more_rounds_than_the_limit_is_refused_before_deriving(costly_pfx):
    assert kdf_iterations(costly_pfx)[0] == HUNDRED_MILLION
    started = time.process_time()
    with pytest.raises(CertificateTooCostly) as raised:
        parse_pkcs12(costly_pfx, PFX_PASSWORD, max_iterations=1_000_000)
    assert raised.value.details == {"max_iterations": 1_000_000}
    # Nothing was derived: 100 M rounds would take many seconds of this process's CPU.
    assert time.process_time() - started < 2


def test_garbage_inside_a_pfx_header_gives_no_counts_and_no_error():
    assert kdf_iterations(b"\x30\x0a\x02\x01\x03\x30\x05\x06\x03\x2a\x03\x04") == []


# --- the time bound -----------------------------------------------------------------------------


def _spin(seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "done"


def _fail():
    raise ValueError("from the child")


def test_call_with_time_limit_returns_raises_and_stops():
    assert call_with_time_limit(_spin, 0.01, cpu_seconds=5, wall_seconds=10) == "done"
    with pytest.raises(ValueError, match="from the child"):
        call_with_time_limit(_fail, cpu_seconds=5, wall_seconds=10)
    with pytest.raises(TimeLimitExceeded):
        call_with_time_limit(_spin, 60, cpu_seconds=1, wall_seconds=30)  # the kernel stops it at 1 s of CPU
    with pytest.raises(TimeLimitExceeded):
        call_with_time_limit(time.sleep, 60, cpu_seconds=30, wall_seconds=0.5)  # the parent gives up
    assert _zombie_children() == []  # every child was collected


def _zombie_children() -> list[int]:
    pids = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as children:
            pids += [int(pid) for pid in children.read().split()]
    zombies = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    zombies.append(pid)
        except FileNotFoundError:
            pass
    return zombies


def test_a_costly_file_that_passes_the_count_check_is_stopped_by_the_time_bound(customer, issue, settings, costly_pfx):
    grant(customer, issue, seats=1)
    settings.CERTIFICATE_MAX_KDF_ITERATIONS = 10 * HUNDRED_MILLION  # as if the count were hidden
    settings.CERTIFICATE_PARSE_SECONDS = 1
    with pytest.raises(CertificateTooCostly) as raised:
        upload_certificate(account=customer.account, actor=customer.user, data=costly_pfx, password=PFX_PASSWORD)
    assert raised.value.details == {"max_seconds": 1}
    assert not Certificate.objects.exists()


def test_an_account_without_a_free_seat_cannot_make_the_server_open_a_file(customer, costly_pfx):
    error = assert_error(upload_pfx(customer, costly_pfx), 409, "seat_limit_reached")
    assert error["details"]["seats_total"] == 0
    assert not Certificate.objects.exists()


def test_the_api_answers_certificate_too_costly(customer, issue, costly_pfx):
    grant(customer, issue, seats=1)
    error = assert_error(upload_pfx(customer, costly_pfx), 400, "certificate_too_costly")
    assert "1,000,000" in error["message"]
    assert not Certificate.objects.exists()
    assert upload_pfx(customer, new_pfx()).status_code == 201  # an ordinary file still goes in


# --- request bodies -------------------------------------------------------------------------------


def test_anonymous_bodies_are_refused_from_the_header_before_reading(client, settings):
    over = settings.REQUEST_MAX_ANONYMOUS_BODY_BYTES + 1
    page = client.post("/login/", data=b"x", content_type="application/x-www-form-urlencoded", CONTENT_LENGTH=over)
    assert page.status_code == 413 and b"too large" in page.content
    api = client.post("/api/v1/keys/validate", data=b"{}", content_type="application/json", CONTENT_LENGTH=over)
    assert_error(api, 413, "payload_too_large")


def test_identified_requesters_may_send_up_to_the_larger_limit(customer, settings):
    between = settings.REQUEST_MAX_ANONYMOUS_BODY_BYTES + 1
    upload = customer.client.post(CERTIFICATES, data=b"{}", content_type="application/json", CONTENT_LENGTH=between)
    assert upload.status_code != 413
    over = settings.REQUEST_MAX_BODY_BYTES + 1
    refused = customer.client.post(CERTIFICATES, data=b"{}", content_type="application/json", CONTENT_LENGTH=over)
    assert_error(refused, 413, "payload_too_large")
    browser = customer.client.post(
        CERTIFICATES, data=b"{}", content_type="application/json", CONTENT_LENGTH=over, HTTP_AUTHORIZATION=""
    )
    assert_error(browser, 413, "payload_too_large")


def test_a_bad_content_length_is_a_400(client):
    response = client.post("/api/v1/keys/validate", data=b"{}", content_type="application/json", CONTENT_LENGTH="-5")
    assert_error(response, 400, "bad_request")


# --- against a real server ---------------------------------------------------------------------------


def _raw_request(url: str, head: str, body: bytes = b"") -> str:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(head.encode() + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("latin-1")


def _upload(url: str, token: str, data: bytes, answers: list) -> None:
    with httpx.Client(base_url=url, timeout=25) as http:
        response = http.post(
            CERTIFICATES,
            files={"file": ("costly.pfx", data, "application/x-pkcs12")},
            data={"password": PFX_PASSWORD},
            headers={"Authorization": f"Bearer {token}"},
        )
        answers.append((response.status_code, response.json()["error"]["code"]))


@pytest.mark.django_db(transaction=True)
def test_three_parallel_costly_uploads_leave_the_site_answering(customer, issue, costly_pfx):
    """The issue's attack: three uploads of a 100 M-round file at once on two workers. Once with
    the count check (refused at once), once with the count check out of the way (as if the count
    were hidden in an encrypted part), where the time bound must answer for it."""
    grant(customer, issue, seats=3)
    for env in ({}, {"CERTIFICATE_MAX_KDF_ITERATIONS": str(10 * HUNDRED_MILLION), "CERTIFICATE_PARSE_SECONDS": "2"}):
        with AppServer(workers=2, env=env) as server:
            answers, health = [], []
            args = (server.url, customer.token, costly_pfx, answers)
            uploads = [threading.Thread(target=_upload, args=args) for _ in range(3)]
            for thread in uploads:
                thread.start()
            time.sleep(0.2)
            while any(thread.is_alive() for thread in uploads):
                health.append(httpx.get(f"{server.url}/healthz", timeout=15).status_code)
                time.sleep(0.1)
            for thread in uploads:
                thread.join()
            health.append(httpx.get(f"{server.url}/healthz", timeout=15).status_code)
            log = server.log_text()
        assert answers == [(400, "certificate_too_costly")] * 3, (env, answers)
        assert set(health) == {200}, health
        assert "WORKER TIMEOUT" not in log and "Traceback" not in log, log[-2000:]
    assert not Certificate.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_200_mib_body_is_refused_before_it_is_sent(db):
    with AppServer(workers=1) as server:
        head = (
            "POST /login/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {200 * 1024 * 1024}\r\nConnection: close\r\n\r\n"
        )
        answer = _raw_request(server.url, head, b"--x\r\n")
        assert answer.startswith("HTTP/1.1 413"), answer[:200]
        over_long = _raw_request(
            server.url, f"GET /api/v1/subscriptions?q={'A' * 20_000} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        assert over_long.startswith("HTTP/1.1 414") and '"code": "uri_too_long"' in over_long, over_long[:300]
        malformed = _raw_request(server.url, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n")
        assert malformed.startswith("HTTP/1.1 400") and "application/json" in malformed, malformed[:300]
        foreign_host = _raw_request(server.url, "GET /api/v1/subscriptions HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        assert foreign_host.startswith("HTTP/1.1 400") and '"code": "bad_request"' in foreign_host, foreign_host[:300]


@pytest.mark.django_db(transaction=True)
def test_a_request_that_outlives_the_worker_timeout_is_answered_with_the_error_body(customer, issue, costly_pfx):
    """gunicorn's timeout above the slowest legitimate request is the last resort; when it does
    strike, the request in hand is answered 503 with the JSON body, not a closed connection."""
    grant(customer, issue, seats=1)
    env = {
        "GUNICORN_TIMEOUT": "3",
        "CERTIFICATE_MAX_KDF_ITERATIONS": str(10 * HUNDRED_MILLION),
        "CERTIFICATE_PARSE_SECONDS": "30",  # the bound is out of the way: the worker timeout strikes
    }
    before = _parsing_children()
    with AppServer(workers=1, env=env) as server:
        answers: list = []
        _upload(server.url, customer.token, costly_pfx, answers)
        response = httpx.get(f"{server.url}/healthz", timeout=30)  # a new worker took over
        log = server.log_text()
    assert answers == [(503, "service_unavailable")]
    assert response.status_code == 200
    assert "WORKER TIMEOUT" in log
    # The killed worker's parsing child died with it (no orphan left burning its 30 s of CPU).
    time.sleep(0.5)
    assert _parsing_children() <= before


def _parsing_children() -> set[int]:
    """Processes whose parent is init (orphans) and that run our test's Python: orphaned children."""
    orphans = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except OSError:
            continue
        if fields[1] == "1" and b"gunicorn" in command and fields[0] != "Z":
            orphans.add(int(entry))
    return orphans
