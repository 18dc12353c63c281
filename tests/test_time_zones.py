"""Local time (SPEC 8): each account and partner has an IANA zone; pages, e-mails and CSV exports
show it, a redeem-by date ends at the partner's local midnight, reminders count local days, and
the API stays in UTC. Apia is UTC+13 all year in the tz database, Port Vila (Efate) UTC+11."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from fiscobridge.accounts.models import Account, Partner
from fiscobridge.accounts.services import set_time_zone
from fiscobridge.audit.models import Event
from fiscobridge.core.errors import PermissionDenied
from fiscobridge.core.localtime import (
    MARKET_TIME_ZONES,
    end_of_day,
    moment_text,
    time_zone_choices,
)
from fiscobridge.keys.models import KeyBatch
from fiscobridge.notifications.models import EmailKind, OutboundEmail
from fiscobridge.notifications.reminders import send_reminders
from fiscobridge.subscriptions.models import Subscription
from tests.factories import browser_for, error_of, post_json, redeem, run_tasks
from tests.test_partner_portal_pages import issue_form

APIA, EFATE, FIJI = ZoneInfo("Pacific/Apia"), ZoneInfo("Pacific/Efate"), ZoneInfo("Pacific/Fiji")


def in_zone(persona, name: str) -> None:
    tenant = persona.account or persona.partner
    set_time_zone(tenant=tenant, time_zone=name, actor=persona.user)
    tenant.refresh_from_db()


def page_text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


# --- the display format and the tz database ----------------------------------------------------


def test_a_moment_reads_as_local_time_with_the_zone_abbreviation():
    moment = datetime(2026, 11, 30, 2, 5, tzinfo=UTC)
    assert moment_text(moment, "Pacific/Fiji") == "30 Nov 2026 14:05 +12"
    assert moment_text(moment, "Pacific/Apia") == "30 Nov 2026 15:05 +13"
    assert moment_text(moment, "Pacific/Efate") == "30 Nov 2026 13:05 +11"
    assert moment_text(moment, "UTC") == "30 Nov 2026 02:05 UTC"


def test_fiji_daylight_saving_is_whatever_the_tz_database_says():
    """Not hard-coded: the expected offsets are read from the installed tz database. Fiji kept
    daylight saving (UTC+13) until January 2021; a summer day and a winter day of 2020 differ
    there, and if a future tz database brings it back for 2026/27 the same code follows it."""
    summer, winter = datetime(2020, 1, 5, 0, 30, tzinfo=UTC), datetime(2020, 6, 15, 0, 30, tzinfo=UTC)
    summer_offset, winter_offset = summer.astimezone(FIJI).utcoffset(), winter.astimezone(FIJI).utcoffset()
    assert summer_offset != winter_offset, "the tz database no longer has Fiji's 2019/20 daylight saving"
    for moment in (summer, winter):
        local = moment.astimezone(FIJI)
        hours = int(local.utcoffset().total_seconds() // 3600)
        assert moment_text(moment, "Pacific/Fiji") == f"{local:%-d %b %Y %H:%M} {hours:+03d}"
    assert moment_text(summer, "Pacific/Fiji") == "5 Jan 2020 13:30 +13"
    assert moment_text(winter, "Pacific/Fiji") == "15 Jun 2020 12:30 +12"


def test_the_market_zones_come_first_then_every_zone():
    names = [name for name, _ in time_zone_choices()]
    assert tuple(names[:3]) == MARKET_TIME_ZONES == ("Pacific/Fiji", "Pacific/Apia", "Pacific/Efate")
    assert "Europe/Berlin" in names and "America/New_York" in names and len(names) == len(set(names)) > 400
    assert names[3:] == sorted(names[3:])


# --- pages -------------------------------------------------------------------------------------


def test_a_page_at_utc_plus_13_shows_the_local_date_around_midnight(customer, issue):
    in_zone(customer, "Pacific/Apia")
    browser = browser_for(customer)
    with time_machine.travel(datetime(2026, 11, 30, 10, 59, tzinfo=UTC), tick=False) as clock:  # 23:59 in Apia
        [before_midnight, after_midnight] = issue(quantity=2)
        redeem(customer, before_midnight)
        clock.move_to(datetime(2026, 11, 30, 11, 0, tzinfo=UTC))  # 1 Dec 00:00 in Apia, still 30 Nov in UTC
        redeem(customer, after_midnight)
        subscriptions = page_text(browser.get("/billing/subscriptions/"))
        activity = page_text(browser.get("/activity/"))
    # Started: the local dates of the two activations, a minute apart across local midnight.
    assert "30 Nov 2026" in subscriptions and "1 Dec 2026" in subscriptions
    assert "1 Dec 2027" in subscriptions  # 12 months after local 1 Dec 2026
    assert "1 Dec 2026 00:00 +13" in activity and "30 Nov 2026 23:59 +13" in activity
    assert " UTC" not in activity


def test_pages_of_a_fiji_account_follow_the_tz_database_across_daylight_saving(customer, issue):
    for moment in (datetime(2020, 1, 5, 0, 30, tzinfo=UTC), datetime(2020, 6, 15, 0, 30, tzinfo=UTC)):
        with time_machine.travel(moment, tick=False):
            Event.objects.create(action="account.created", account=customer.account, at=moment)
    activity = page_text(browser_for(customer).get("/activity/"))
    assert "5 Jan 2020 13:30 +13" in activity and "15 Jun 2020 12:30 +12" in activity


def test_partner_pages_show_the_partner_zone(reseller, customer, issue):
    in_zone(reseller, "Pacific/Efate")
    with time_machine.travel(datetime(2026, 11, 30, 13, 30, tzinfo=UTC), tick=False):  # 1 Dec 00:30 in Port Vila
        [code] = issue()
        redeem(customer, code)
        batch = KeyBatch.objects.get()
        key_id = batch.keys.get().pk
        detail = page_text(browser_for(reseller).get(f"/partner/keys/{key_id}/"))
        dashboard = page_text(browser_for(reseller).get("/partner/"))
    assert "1 Dec 2026 00:30 +11" in detail and "UTC" not in detail
    assert "(Pacific/Efate)" in dashboard


def test_staff_and_the_api_stay_in_utc(customer, issue):
    in_zone(customer, "Pacific/Apia")
    with time_machine.travel(datetime(2026, 11, 30, 11, 0, tzinfo=UTC), tick=False):
        [code] = issue()
        subscription = redeem(customer, code)
    assert subscription["started_at"] in ("2026-11-30T11:00:00Z", "2026-11-30T11:00:00+00:00")
    listed = customer.client.get("/api/v1/subscriptions").json()["pos"]["subscriptions"][0]
    assert listed["started_at"] == subscription["started_at"]


# --- the Settings page: who may change the zone, and bad input ---------------------------------


def test_a_customer_user_sets_the_account_zone_on_the_settings_page(customer, teammate):
    browser = browser_for(teammate)  # any user of the tenant, not only its first
    page = page_text(browser.get("/settings/"))
    first_options = [part.split('"')[1] for part in page.split("<option value=")[1:4]]
    assert first_options == list(MARKET_TIME_ZONES)
    assert 'value="Pacific/Fiji" selected' in page
    response = browser.post("/settings/", {"time_zone": "Pacific/Apia"})
    assert response.status_code == 302 and response["Location"] == "/settings/"
    assert Account.objects.get(pk=customer.account.pk).time_zone == "Pacific/Apia"
    event = Event.objects.get(action="account.time_zone_changed")
    assert event.account_id == customer.account.pk and event.actor_id == teammate.user.pk
    assert event.details == {"from": "Pacific/Fiji", "to": "Pacific/Apia"}
    assert "+13" in page_text(browser.get("/settings/"))


def test_an_unknown_zone_is_a_form_error_and_changes_nothing(customer, reseller):
    for persona, path in ((customer, "/settings/"), (reseller, "/partner/settings/")):
        for bad in ("Mars/Olympus_Mons", "", "pacific/fiji", "../../etc/passwd", "UTC" * 30):
            response = browser_for(persona).post(path, {"time_zone": bad})
            assert response.status_code == 422
            assert 'role="alert"' in response.content.decode()
        tenant = persona.account or persona.partner
        assert type(tenant).objects.get(pk=tenant.pk).time_zone == "Pacific/Fiji"
    assert not Event.objects.filter(action__endswith="time_zone_changed").exists()


def test_a_partner_user_sets_only_the_partner_zone(reseller, other_reseller, customer):
    response = browser_for(reseller).post("/partner/settings/", {"time_zone": "Pacific/Efate"})
    assert response.status_code == 302
    assert Partner.objects.get(pk=reseller.partner.pk).time_zone == "Pacific/Efate"
    assert Partner.objects.get(pk=other_reseller.partner.pk).time_zone == "Pacific/Fiji"
    # A partner user on the customer's Settings page (and the reverse) is refused: each page
    # changes only the requester's own tenant, which it never reads from the request.
    assert browser_for(reseller).post("/settings/", {"time_zone": "Pacific/Apia"}).status_code == 403
    assert browser_for(customer).post("/partner/settings/", {"time_zone": "Pacific/Apia"}).status_code == 403
    assert Account.objects.get(pk=customer.account.pk).time_zone == "Pacific/Fiji"


def test_anonymous_users_are_sent_to_log_in(anonymous):
    for path in ("/settings/", "/partner/settings/"):
        response = anonymous.post(path, {"time_zone": "Pacific/Apia"})
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_service_refuses_another_tenants_user(customer, outsider, reseller):
    with pytest.raises(PermissionDenied):
        set_time_zone(tenant=customer.account, time_zone="Pacific/Apia", actor=outsider.user)
    with pytest.raises(PermissionDenied):
        set_time_zone(tenant=customer.account, time_zone="Pacific/Apia", actor=reseller.user)
    assert Account.objects.get(pk=customer.account.pk).time_zone == "Pacific/Fiji"


# --- redeem-by: the end of that day in the partner's zone --------------------------------------


def test_a_redeem_by_date_ends_at_midnight_in_the_partners_zone(reseller, customer):
    in_zone(reseller, "Pacific/Apia")
    with time_machine.travel(datetime(2026, 11, 30, 0, 0, tzinfo=UTC), tick=False) as clock:
        response = post_json(
            reseller.client,
            "/api/v1/partner/keys",
            {"product": "pos", "seats": 1, "months": 12, "quantity": 2, "redeem_by": "2026-12-05"},
        )
        assert response.status_code == 201, response.content
        # 6 Dec 00:00 in Apia is 5 Dec 11:00 UTC; the API says it in UTC.
        assert response.json()["batch"]["redeem_by"] in ("2026-12-05T11:00:00Z", "2026-12-05T11:00:00+00:00")
        assert KeyBatch.objects.get().redeem_by == datetime(2026, 12, 6, 0, 0, tzinfo=APIA)
        first, second = (k["code"] for k in response.json()["keys"])
        clock.move_to(datetime(2026, 12, 5, 10, 59, 59, tzinfo=UTC))  # 23:59:59 on 5 Dec in Apia
        redeem(customer, first)
        clock.move_to(datetime(2026, 12, 5, 11, 0, tzinfo=UTC))  # midnight in Apia
        late = post_json(customer.client, "/api/v1/keys/activate", {"key": second, "product": "pos"})
        assert late.status_code == 409 and error_of(late)["code"] == "not_available"


def test_the_issue_form_reads_its_date_in_the_partners_zone(reseller):
    in_zone(reseller, "Pacific/Efate")
    with time_machine.travel(datetime(2026, 11, 30, 0, 0, tzinfo=UTC), tick=False):
        page = issue_form(browser_for(reseller), redeem_by="2026-12-05")
    assert page.status_code == 200
    assert KeyBatch.objects.get().redeem_by == end_of_day(date(2026, 12, 5), "Pacific/Efate")
    assert KeyBatch.objects.get().redeem_by == datetime(2026, 12, 5, 13, 0, tzinfo=UTC)
    assert "6 Dec 2026 00:00 +11" in page.content.decode()


def test_a_date_time_with_a_zone_is_kept_as_given(reseller):
    in_zone(reseller, "Pacific/Apia")
    response = post_json(
        reseller.client,
        "/api/v1/partner/keys",
        {"product": "pos", "seats": 1, "months": 1, "quantity": 1, "redeem_by": "2099-01-01T18:00:00Z"},
    )
    assert response.status_code == 201
    assert KeyBatch.objects.get().redeem_by == datetime(2099, 1, 1, 18, 0, tzinfo=UTC)


# --- e-mails and CSV ---------------------------------------------------------------------------


def test_e_mails_speak_each_recipients_local_time(customer, reseller, issue, mailoutbox):
    in_zone(customer, "Pacific/Apia")
    in_zone(reseller, "Pacific/Efate")
    with time_machine.travel(datetime(2026, 11, 30, 11, 30, tzinfo=UTC), tick=False):
        [code] = issue(seats=3, months=12)
        redeem(customer, code)
        run_tasks()
    receipt = next(m for m in mailoutbox if m.to == [customer.user.email])
    notice = next(m for m in mailoutbox if m.to == [reseller.user.email])
    # Apia: 1 Dec 2026 00:30 +13, and the seats run to 1 Dec 2027 (UTC would say 30 Nov).
    assert receipt.subject == "Activation receipt: Cloud POS, 3 seats until 2027-12-01"
    assert "1 Dec 2026 00:30 +13" in receipt.body and "1 Dec 2027 00:30 +13" in receipt.body
    assert "UTC" not in receipt.body
    # Port Vila: the same moment is still 30 November.
    assert "30 Nov 2026 22:30 +11" in notice.body and "UTC" not in notice.body


def test_reminders_count_the_accounts_local_days(customer, issue, mailoutbox):
    in_zone(customer, "Pacific/Apia")
    with time_machine.travel(datetime(2027, 3, 10, 9, 0, tzinfo=UTC), tick=False) as clock:
        [code] = issue(months=12)
        redeem(customer, code)
        run_tasks()
        subscription = Subscription.objects.get()
        assert subscription.expires_at == datetime(2028, 3, 10, 9, 0, tzinfo=UTC)  # 10 Mar 22:00 in Apia
        mailoutbox.clear()
        # 7 local days before 10 March is 3 March, which starts at 2 March 11:00 UTC in Apia.
        clock.move_to(datetime(2028, 3, 2, 10, 59, tzinfo=UTC))
        send_reminders()
        assert {m.subject[-7:] for m in mailoutbox} == {"30 days"}
        mailoutbox.clear()
        clock.move_to(datetime(2028, 3, 2, 11, 0, tzinfo=UTC))
        assert send_reminders().queued == 2
        [to_customer] = [m for m in mailoutbox if m.to == [customer.user.email]]
        assert to_customer.subject.endswith("ends in 7 days")
        assert "10 Mar 2028 22:00 +13" in to_customer.body
    assert OutboundEmail.objects.filter(subscription=subscription, kind=EmailKind.SUBSCRIPTION_REMINDER).count() == 2


def test_the_keys_csv_is_in_the_partners_zone(reseller, customer, issue):
    in_zone(reseller, "Pacific/Apia")
    with time_machine.travel(datetime(2026, 11, 30, 11, 0, tzinfo=UTC), tick=False):
        [code] = issue(redeem_by=date(2026, 12, 24))
        redeem(customer, code)
        response = browser_for(reseller).get("/partner/keys/export.csv")
        body = b"".join(response.streaming_content).decode()
    [row] = list(csv.DictReader(io.StringIO(body)))
    assert row["created_at"] == "2026-12-01T00:00:00+13:00"
    assert row["activated_at"] == "2026-12-01T00:00:00+13:00"
    assert row["redeem_by"] == "2026-12-25T00:00:00+13:00"  # through 24 Dec in Apia
    assert "fiscobridge-keys-20261201-000000.csv" in response["Content-Disposition"]


def test_a_day_ends_at_the_next_local_midnight_even_across_daylight_saving():
    """12 Jan 2020 was the day Fiji left daylight saving (per the tz database): that local day
    had 25 hours, and "through 12 Jan" ends at midnight +12."""
    day = date(2020, 1, 12)
    start, end = end_of_day(day - timedelta(days=1), "Pacific/Fiji"), end_of_day(day, "Pacific/Fiji")
    length = end.astimezone(UTC) - start.astimezone(UTC)
    database_says = datetime(2020, 1, 12, tzinfo=FIJI).utcoffset() - datetime(2020, 1, 13, tzinfo=FIJI).utcoffset()
    assert length == timedelta(hours=24) + database_says == timedelta(hours=25)
    assert end.astimezone(UTC) == datetime(2020, 1, 12, 12, 0, tzinfo=UTC)


def test_staff_see_one_tenants_page_in_that_tenants_zone(staff, customer, issue):
    in_zone(customer, "Pacific/Apia")
    with time_machine.travel(datetime(2026, 11, 30, 11, 0, tzinfo=UTC), tick=False):  # 1 Dec 00:00 in Apia
        [code] = issue()
        redeem(customer, code)
    page = page_text(browser_for(staff).get(f"/admin/accounts/account/{customer.account.pk}/change/"))
    assert "Pacific/Apia" in page
    assert "Dec. 1, 2026, midnight" in page and "Nov. 30, 2026, 11 a.m." not in page  # the subscription's start
    # Lists across tenants stay in UTC (no one zone fits them).
    listing = page_text(browser_for(staff).get("/admin/subscriptions/subscription/"))
    assert "Nov. 30, 2026, 11 a.m." in listing
