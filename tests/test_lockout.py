"""Failed-attempt limits (SPEC 2.6): session/API token, account and IP layers; only row 5 counts."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from fiscobridge.accounts.services import create_api_token
from fiscobridge.audit.models import Event
from fiscobridge.keys.codes import generate_code
from fiscobridge.keys.models import FailureCounter
from tests.factories import bearer_client, post_json

ACTIVATE = "/api/v1/keys/activate"
VALIDATE = "/api/v1/keys/validate"
START = "2027-03-01 12:00:00Z"


def attempt(client, key, product="pos", endpoint=ACTIVATE, **extra):
    return post_json(client, endpoint, {"key": key, "product": product}, **extra)


def fail(client, times, **extra):
    for _ in range(times):
        response = attempt(client, generate_code("pos"), **extra)
        assert response.status_code == 409, response.content
        assert response.json()["error"]["code"] == "not_available"


def assert_locked(response, retry_after):
    assert response.status_code == 429
    assert response.json()["error"] == {
        "code": "too_many_attempts",
        "message": "Too many failed attempts",
        "details": {"retry_after": retry_after},
    }
    assert response["Retry-After"] == str(retry_after)


def new_session(persona):
    """Another API token of the same user: for the limits, a separate session."""
    return bearer_client(persona.user)


def test_five_failures_lock_the_session_for_fifteen_minutes(customer, issue):
    [good] = issue()
    with time_machine.travel(START, tick=False) as clock:
        fail(customer.client, 4)
        clock.shift(timedelta(minutes=3))
        fail(customer.client, 1)  # the 5th: the lock runs 15 minutes from here
        clock.shift(timedelta(minutes=1))
        # A lock answers every validate and activate first, whatever the key.
        assert_locked(attempt(customer.client, good), 14 * 60)
        assert_locked(attempt(customer.client, good, endpoint=VALIDATE), 14 * 60)
        assert_locked(attempt(customer.client, "garbage"), 14 * 60)
        clock.shift(timedelta(minutes=14))
        assert attempt(customer.client, good).status_code == 201
    assert Event.objects.filter(action="redeem.locked_out", account=customer.account).count() == 1


def test_after_a_lock_expires_the_session_counts_afresh(customer):
    with time_machine.travel(START, tick=False) as clock:
        fail(customer.client, 5)
        clock.shift(timedelta(minutes=15))
        fail(customer.client, 4)  # four new failures: not yet locked again
        fail(customer.client, 1)
        assert_locked(attempt(customer.client, generate_code("pos")), 15 * 60)


def test_a_tokens_failures_older_than_the_window_never_count(customer):
    # Issue 10.6: four failures a month ago and one today are one failure in the window.
    with time_machine.travel(START, tick=False) as clock:
        fail(customer.client, 4)
        clock.shift(timedelta(days=30))
        fail(customer.client, 4)  # 1 to 4 of this window
        fail(customer.client, 1)  # the 5th within the hour
        assert_locked(attempt(customer.client, generate_code("pos")), 15 * 60)


def test_other_sessions_of_the_account_are_not_locked_by_one_session(customer):
    with time_machine.travel(START, tick=False):
        fail(customer.client, 5)
        assert_locked(attempt(customer.client, generate_code("pos")), 900)
        other = new_session(customer)
        assert attempt(other, generate_code("pos")).status_code == 409


def test_browser_sessions_are_sessions_too(customer):
    with time_machine.travel(START, tick=False):
        first, second = Client(), Client()
        first.force_login(customer.user)
        second.force_login(customer.user)
        fail(first, 5)
        assert_locked(attempt(first, generate_code("pos")), 900)
        assert attempt(second, generate_code("pos")).status_code == 409


@pytest.mark.parametrize(
    "mistake",
    ["malformed", "check_character", "wrong_product", "already_activated"],
)
def test_rows_two_to_four_never_count(customer, issue, mistake):
    [mine] = issue()
    [int_code] = issue(product="int", tier="starter")
    assert attempt(customer.client, mine).status_code == 201
    typed = {
        "malformed": "POS-NOPE",
        "check_character": mine[:-1] + ("2" if mine[-1] != "2" else "3"),
        "wrong_product": int_code,
        "already_activated": mine,
    }[mistake]
    with time_machine.travel(START, tick=False):
        for _ in range(12):
            assert attempt(customer.client, typed).status_code in (400, 409)
        fail(customer.client, 4)
        [fresh] = issue()
        assert attempt(customer.client, fresh).status_code == 201
    assert not FailureCounter.objects.filter(locked_until__isnull=False).exists()
    assert FailureCounter.objects.get(scope="session").failures == 4  # the four real failures only


def test_a_success_does_not_clear_earlier_failures(customer, issue):
    [good] = issue()
    with time_machine.travel(START, tick=False):
        fail(customer.client, 4)
        assert attempt(customer.client, good).status_code == 201
        fail(customer.client, 1)
        assert_locked(attempt(customer.client, generate_code("pos")), 900)


def test_twenty_failures_in_a_day_lock_the_account(customer, teammate):
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(4):  # four sessions × five failures would trip the session layer first
            fail(new_session(customer), 4)
            clock.shift(timedelta(hours=1))
        fail(new_session(teammate), 4)  # the 20th failure, 4 hours after the first
        fresh_session = new_session(teammate)
        # Locked until the first failure leaves the 24-hour window: 20 hours from now.
        assert_locked(attempt(fresh_session, generate_code("pos")), 20 * 3600)
        assert_locked(attempt(customer.client, generate_code("pos")), 20 * 3600)
        clock.shift(timedelta(hours=20))
        assert attempt(fresh_session, generate_code("pos")).status_code == 409


def test_account_lock_does_not_touch_other_accounts(customer, outsider):
    with time_machine.travel(START, tick=False):
        for _ in range(5):
            fail(new_session(customer), 4)
        assert attempt(new_session(customer), generate_code("pos")).status_code == 429
        assert attempt(outsider.client, generate_code("pos")).status_code == 409


def test_fifty_failures_from_one_ip_lock_that_ip(customer, outsider, db):
    """Across accounts and sessions: 13 sessions × 4 failures from one address."""
    from fiscobridge.accounts.services import create_account

    accounts = [customer, outsider]
    with time_machine.travel(START, tick=False) as clock:
        sessions = []
        for index in range(13):
            owner = accounts[index % 2] if index < 8 else None
            if owner is None:
                user = create_account(
                    name=f"Shop {index}", email=f"o{index}@shop.example", password="x-long-password-1"
                )
                sessions.append(Client(HTTP_AUTHORIZATION=f"Bearer {create_api_token(user=user).plain}"))
            else:
                sessions.append(new_session(owner))
        failures = 0
        for session in sessions:
            for _ in range(4):
                if failures == 50:
                    break
                fail(session, 1, REMOTE_ADDR="203.0.113.7")
                failures += 1
            clock.shift(timedelta(seconds=30))
        # The first failure was 13 × 30 s ago: the window allows again when it is an hour old.
        response = attempt(new_session(outsider), generate_code("pos"), REMOTE_ADDR="203.0.113.7")
        assert_locked(response, 3600 - 13 * 30)
        # The same accounts from another address are not locked.
        other = attempt(new_session(outsider), generate_code("pos"), REMOTE_ADDR="198.51.100.9")
        assert other.status_code == 409


def test_forwarded_for_is_ignored_unless_a_proxy_is_trusted(customer, settings):
    with time_machine.travel(START, tick=False):
        for index in range(5):
            session = new_session(customer)
            fail(session, 1, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{index}")
    from fiscobridge.keys.models import RedeemAttempt

    assert set(RedeemAttempt.objects.values_list("ip", flat=True)) == {"10.0.0.1"}
    settings.FISCOBRIDGE_TRUSTED_PROXY_COUNT = 1
    fail(new_session(customer), 1, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="spoofed, 192.0.2.50")
    assert RedeemAttempt.objects.order_by("-id").first().ip == "192.0.2.50"


def test_limits_are_settings(customer, settings):
    settings.REDEEM_SESSION_FAILURE_LIMIT = 2
    settings.REDEEM_SESSION_LOCK_SECONDS = 60
    with time_machine.travel(START, tick=False):
        fail(customer.client, 2)
        assert_locked(attempt(customer.client, generate_code("pos")), 60)


def test_a_lock_answers_before_a_malformed_body_is_refused(customer):
    with time_machine.travel(START, tick=False):
        fail(customer.client, 5)
        for body in ({"key": "x" * 500, "product": "pos"}, {"key": generate_code("pos")}, {"product": "pos"}):
            assert_locked(post_json(customer.client, ACTIVATE, body), 900)
            assert_locked(post_json(customer.client, VALIDATE, body), 900)


def test_the_account_window_slides_so_no_burst_passes_at_its_edge(customer):
    """20 in any 24 hours: failures near the end of one day and the start of the next count
    together (a window fixed at the first failure would let 38 through in a few minutes)."""
    with time_machine.travel(START, tick=False) as clock:
        fail(new_session(customer), 1)  # the first, at START
        clock.shift(timedelta(hours=23))
        for _ in range(4):
            fail(new_session(customer), 4)
        fail(new_session(customer), 2)  # 19 failures in the window
        clock.shift(timedelta(hours=1, seconds=1))  # the first one has left the window: 18 in it
        fail(new_session(customer), 2)  # the 19th and 20th in the last 24 hours
        # Locked until the oldest of these 20 leaves the window: 23 hours from now, less a second.
        assert_locked(attempt(new_session(customer), generate_code("pos")), 23 * 3600 - 1)


def test_a_racing_failure_after_the_window_cannot_undo_a_lock_that_outlasts_it(customer):
    """A session's lock (15 minutes) may end after its window (1 hour): a failure counted then
    by a request that checked the lock before it began must still be refused."""
    from fiscobridge.keys.limits import Requester, count_failure
    from fiscobridge.keys.models import RedeemAttempt

    with time_machine.travel(START, tick=False) as clock:
        fail(customer.client, 4)
        clock.shift(timedelta(minutes=50))
        fail(customer.client, 1)  # the 5th: locked until minute 65
        clock.shift(timedelta(minutes=11))  # minute 61: the window of the first four has passed
        first = RedeemAttempt.objects.earliest("at")  # the same token, account and address
        requester = Requester(
            account=customer.account, user=customer.user, session_scope=first.session_scope, ip=first.ip
        )
        refused = count_failure(requester)
        assert refused is not None and refused.retry_after == 4 * 60
        assert_locked(attempt(customer.client, generate_code("pos")), 4 * 60)
