"""Partner Portal pages, fragments and export (Django test client): the owner, another partner,
customers, staff and anonymous users."""

import csv
import io
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from fiscobridge.audit.models import Event
from fiscobridge.core import clock
from fiscobridge.keys.codes import generate_code
from fiscobridge.keys.models import ActivationKey, KeyBatch
from fiscobridge.keys.services import revoke_key, void_key
from fiscobridge.partners.charts import bar_chart
from fiscobridge.partners.views import export as export_views
from fiscobridge.partners.views import keys as key_list_views
from tests.factories import PASSWORD, browser_for, code_variants, dump_database, hint_of, key_of, redeem

PAGES = [
    "/partner/",
    "/partner/issue/",
    "/partner/keys/",
    "/partner/keys/table/",
    "/partner/keys/export.csv",
    "/partner/lookup/",
    "/partner/tokens/",
]
POSTS = [
    "/partner/issue/",
    "/partner/lookup/",
    "/partner/tokens/",
    "/partner/tokens/1/revoke/",
    "/partner/keys/1/revoke/",
]


def text_of(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def key_ids(codes) -> list[int]:
    return [key_of(code).pk for code in codes]


def issue_form(client, **fields):
    """GET the issue form (for its one-time nonce), then POST it."""
    htmx = fields.pop("htmx", False)
    page = client.get("/partner/issue/")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.content.decode()).group(1)
    data = {
        "product": "pos",
        "tier": "",
        "seats": 2,
        "months": 12,
        "quantity": 1,
        "reference": "",
        "redeem_by": "",
        "email": "",
        "nonce": nonce,
        **fields,
    }
    return client.post("/partner/issue/", data, **({"HTTP_HX_REQUEST": "true"} if htmx else {}))


def codes_in(html: str) -> list[str]:
    return re.findall(r"data-code>([A-Z0-9-]{18})<", html)


# --------------------------------------------------------------------------- who gets in


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_a_partner(reseller, issue, path):
    issue(quantity=2)
    response = browser_for(reseller).get(path)
    assert response.status_code == 200
    body = text_of(response)
    if path.endswith(".csv"):
        assert body.startswith("id,hint,")
    elif path.endswith("/table/"):
        assert "<html" not in body and 'id="keys-table"' in body
    else:
        assert "Partner Portal" in body and "Reseller One" in body


def test_key_detail_renders_for_its_partner(reseller, issue):
    [key_id] = key_ids(issue())
    response = browser_for(reseller).get(f"/partner/keys/{key_id}/")
    assert response.status_code == 200 and b"Revoke key" in response.content


@pytest.mark.parametrize("path", [*PAGES, "/partner/keys/1/"])
def test_anonymous_is_sent_to_login(anonymous, path):
    response = anonymous.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/partner/")


@pytest.mark.parametrize("path", POSTS)
def test_anonymous_htmx_posts_redirect_to_login(anonymous, path):
    response = anonymous.post(path, {}, HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Redirect"] == "/login/"


@pytest.mark.parametrize("path", [*PAGES, "/partner/keys/1/"])
def test_customers_and_staff_are_not_partners(customer, staff, path):
    for persona in (customer, staff):
        response = browser_for(persona).get(path)
        assert response.status_code == 403
        assert b"This is the Partner Portal" in response.content


@pytest.mark.parametrize("path", POSTS)
def test_customers_and_staff_cannot_post(customer, staff, reseller, issue, path):
    issue()
    for persona in (customer, staff):
        response = browser_for(persona).post(
            path,
            {
                "reason": "x",
                "key": "POS-2222-2222-2222",
                "name": "t",
                "product": "pos",
                "seats": 1,
                "months": 1,
                "quantity": 1,
            },
        )
        assert response.status_code == 403
    assert KeyBatch.objects.count() == 1 and not ActivationKey.objects.filter(status="revoked").exists()


def test_home_and_login_land_partners_on_the_dashboard(reseller):
    client = Client()
    response = client.post("/login/", {"username": reseller.user.email, "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/partner/"
    assert b"<h1>Dashboard</h1>" in response.content
    nav = re.search(r'<nav class="sidebar".*?</nav>', response.content.decode(), re.S).group(0)
    for name in ["Dashboard", "Issue keys", "Keys", "Lookup", "API tokens"]:
        assert f">{name}</a>" in nav


def test_client_portal_still_refuses_partners(reseller):
    assert browser_for(reseller).get("/pos/").status_code == 403


# --------------------------------------------------------------------------- isolation between partners


def test_another_partners_key_is_not_found(reseller, other_reseller, issue):
    [code] = issue()
    [key_id] = key_ids([code])
    intruder = browser_for(other_reseller)
    assert intruder.get(f"/partner/keys/{key_id}/").status_code == 404
    assert intruder.post(f"/partner/keys/{key_id}/revoke/", {"reason": "mine now"}).status_code == 404
    assert intruder.post(f"/partner/keys/{key_id}/revoke/", {"reason": "x"}, HTTP_HX_REQUEST="true").status_code == 404
    assert ActivationKey.objects.get(pk=key_id).status == "available"
    assert not Event.objects.filter(action="key.revoked").exists()
    lookup = intruder.post("/partner/lookup/", {"key": code})
    assert lookup.status_code == 200 and b"No such key among yours" in lookup.content
    # Ids beyond any key, and beyond 64 bits, are just as unknown.
    assert intruder.get("/partner/keys/999999999/").status_code == 404
    assert intruder.get(f"/partner/keys/{2**70}/").status_code == 404


def test_another_partners_keys_stay_out_of_list_export_and_dashboard(reseller, other_reseller, issue, customer):
    codes = issue(quantity=3, reference="Reseller One order")
    redeem(customer, codes[0])
    batch = KeyBatch.objects.get(partner=reseller.partner)
    mine = issue(quantity=1, partner=other_reseller.partner, reference="Two's own")
    [my_id] = key_ids(mine)
    theirs = key_ids(codes)
    intruder = browser_for(other_reseller)
    for path in ["/partner/keys/", "/partner/keys/table/", "/partner/keys/export.csv"]:
        for query in ["", f"?batch={batch.pk}", "?q=Reseller+One", f"?q={codes[1][-4:]}", "?status=activated"]:
            body = text_of(intruder.get(path + query))
            for key_id in theirs:
                assert f"/partner/keys/{key_id}/" not in body and f"\n{key_id}," not in body
            for code in codes:
                assert hint_of(code) not in body
            assert "Reseller One order" not in body
    assert hint_of(mine[0]) in text_of(intruder.get("/partner/keys/"))
    assert f"\n{my_id}," in text_of(intruder.get("/partner/keys/export.csv"))
    dashboard = intruder.get("/partner/").content.decode()
    assert re.search(r'data-testid="total-available">1<', dashboard)
    assert re.search(r'data-testid="total-activated">0<', dashboard)
    assert "No activations in the last 90 days" in dashboard
    # Another partner's batch is not even offered as a filter.
    assert f'value="{batch.pk}"' not in intruder.get("/partner/keys/").content.decode()


def test_tokens_of_another_user_cannot_be_revoked(reseller, other_reseller):
    from fiscobridge.accounts.models import ApiToken

    token = ApiToken.objects.get(user=reseller.user)
    assert browser_for(other_reseller).post(f"/partner/tokens/{token.pk}/revoke/").status_code == 404
    assert browser_for(other_reseller).post(f"/partner/tokens/{2**70}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


# --------------------------------------------------------------------------- issue keys


def test_issue_shows_the_codes_once_and_stores_none(reseller):
    client = browser_for(reseller)
    response = issue_form(client, quantity=3, reference="Order 1001", seats=5, months=24)
    assert response.status_code == 200
    html = response.content.decode()
    codes = codes_in(html)
    assert len(codes) == 3 and len(set(codes)) == 3
    assert "3 keys issued in batch" in html and "shown only this once" in html
    assert "no-store" in response["Cache-Control"]
    batch = KeyBatch.objects.get(partner=reseller.partner)
    assert (batch.quantity, batch.seats, batch.months, batch.reference) == (3, 5, 24, "Order 1001")
    assert Event.objects.filter(action="key.issued", target_id=str(batch.pk), actor=reseller.user).exists()
    # Nowhere again: not the form page, the list, a detail page, the export, the database.
    [key_id, *_] = key_ids(codes)
    later = [
        client.get("/partner/issue/"),
        client.get("/partner/keys/"),
        client.get(f"/partner/keys/{key_id}/"),
        client.get("/partner/keys/export.csv"),
        client.get(f"/partner/keys/table/?batch={batch.pk}"),
    ]
    dump = dump_database()
    for code in codes:
        for variant in code_variants(code):
            assert variant not in dump
            for page in later:
                assert variant not in text_of(page)


def test_issue_through_htmx_answers_a_fragment(reseller):
    response = issue_form(browser_for(reseller), quantity=2, htmx=True)
    html = response.content.decode()
    assert "<html" not in html and 'id="issue-area"' in html and 'hx-history="false"' in html
    assert len(codes_in(html)) == 2


def test_a_resent_issue_form_issues_nothing(reseller):
    client = browser_for(reseller)
    first = issue_form(client, quantity=2)
    assert len(codes_in(first.content.decode())) == 2
    nonce = re.search(r'name="nonce" value="([^"]+)"', client.get("/partner/issue/").content.decode()).group(1)
    data = {"product": "pos", "seats": 1, "months": 1, "quantity": 4, "nonce": nonce}
    assert len(codes_in(client.post("/partner/issue/", data).content.decode())) == 4
    again = client.post("/partner/issue/", data)  # the browser re-sends the same POST (reload, back)
    assert b"already sent" in again.content and codes_in(again.content.decode()) == []
    forged = client.post("/partner/issue/", {**data, "nonce": "made-up"})
    assert b"already sent" in forged.content
    assert KeyBatch.objects.filter(partner=reseller.partner).count() == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"product": "int", "tier": ""}, "Integrations keys need a tier"),
        ({"seats": 0}, "greater than or equal to 1"),
        ({"seats": 1001}, "less than or equal to 1000"),
        ({"months": 61}, "less than or equal to 60"),
        ({"quantity": 10_001}, "less than or equal to 10000"),
        ({"quantity": 2, "email": "buyer@example.com"}, "only when you issue a single key"),
        ({"email": "not-an-address"}, "valid email"),
        ({"redeem_by": "2001-01-01"}, "Redeem-by must be in the future"),
        ({"reference": "bad\x07text"}, "control characters"),
        ({"reference": "bad\x00text"}, "Null characters are not allowed"),
        ({"product": "xyz"}, "Select a valid choice"),
    ],
)
def test_issue_form_errors(reseller, fields, message):
    response = issue_form(browser_for(reseller), **fields)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not KeyBatch.objects.exists()


def test_issue_int_keys_with_a_redeem_by_date(reseller):
    day = (clock.now() + timedelta(days=30)).date()
    response = issue_form(browser_for(reseller), product="int", tier="growth", quantity=2, redeem_by=day.isoformat())
    assert len(codes_in(response.content.decode())) == 2
    batch = KeyBatch.objects.get()
    # Through that day in the partner's zone (Pacific/Fiji by default): its next local midnight.
    fiji = ZoneInfo("Pacific/Fiji")
    assert batch.tier == "growth"
    assert batch.redeem_by == datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=fiji)


def test_pos_keys_ignore_a_hidden_tier(reseller):
    issue_form(browser_for(reseller), product="pos", tier="scale")
    assert KeyBatch.objects.get().tier == ""


# --------------------------------------------------------------------------- e-mail a single key


def test_a_single_key_is_emailed_once_and_not_kept(reseller, mailoutbox):
    response = issue_form(browser_for(reseller), quantity=1, email="buyer@shop.example", reference="Invoice 77")
    html = response.content.decode()
    [code] = codes_in(html)
    assert "The key was e-mailed to buyer@shop.example" in html
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["buyer@shop.example"] and "Reseller One" in mail.subject
    assert code in mail.body and "Activate Key" in mail.body
    event = Event.objects.get(action="key.emailed")
    assert event.details == {"to": "buyer@shop.example"} and event.partner == reseller.partner
    assert event.target_id == str(key_ids([code])[0])
    dump = dump_database()
    for variant in code_variants(code):
        assert variant not in dump
    # In the key's history, without the code.
    detail = browser_for(reseller).get(f"/partner/keys/{event.target_id}/").content.decode()
    assert "E-mailed to a customer" in detail and "to buyer@shop.example" in detail and code not in detail


def test_no_email_without_an_address(reseller, mailoutbox):
    issue_form(browser_for(reseller), quantity=1)
    assert mailoutbox == [] and not Event.objects.filter(action__startswith="key.email").exists()


def test_a_failed_email_keeps_the_key_and_says_so(reseller, mailoutbox, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("fiscobridge.partners.emails.send_mail", broken)
    response = issue_form(browser_for(reseller), quantity=1, email="buyer@shop.example")
    html = response.content.decode()
    [code] = codes_in(html)
    assert "could not be sent" in html
    assert ActivationKey.objects.filter(status="available").count() == 1
    assert Event.objects.get(action="key.email_failed").details == {
        "to": "buyer@shop.example",
        "error": "ConnectionRefusedError",
    }
    assert code not in caplog.text and "failed" in caplog.text


# --------------------------------------------------------------------------- keys list, search, pages


def test_list_filters_and_search(reseller, issue, customer):
    pos = issue(quantity=4, reference="Alpha shop")
    ints = issue(product="int", tier="growth", quantity=2, reference="Beta corp")
    redeem(customer, pos[0])
    revoke_key(key=ActivationKey.objects.get(pk=key_ids([pos[1]])[0]), reason="cancelled", actor=reseller.user)
    client = browser_for(reseller)

    def hints(query):
        html = client.get(f"/partner/keys/table/?{query}").content.decode()
        return set(re.findall(r"(?:POS|INT)-••••-••••-[A-Z0-9]{4}", html))

    assert hints("") == {hint_of(c) for c in pos + ints}
    assert hints("product=int") == {hint_of(c) for c in ints}
    assert hints("tier=growth") == {hint_of(c) for c in ints}
    assert hints("status=activated") == {hint_of(pos[0])}
    assert hints("status=revoked") == {hint_of(pos[1])}
    assert hints("status=available&product=pos") == {hint_of(c) for c in pos[2:]}
    assert hints("q=beta") == {hint_of(c) for c in ints}
    assert hints(f"q={pos[3][-4:].lower()}") >= {hint_of(pos[3])}
    assert hints(f"q={hint_of(pos[3])}") >= {hint_of(pos[3])}
    batch = KeyBatch.objects.get(product="int")
    assert hints(f"batch={batch.pk}") == {hint_of(c) for c in ints}
    # Unknown filter values are ignored, not errors.
    assert hints("status=bogus&product=zzz&batch=abc") == {hint_of(c) for c in pos + ints}
    assert "No key matches these filters" in client.get("/partner/keys/table/?q=nothing-like-this").content.decode()
    bad = client.get("/partner/keys/table/?q=a%00b").content.decode()
    assert "control characters" in bad


def test_list_rows_show_each_key_and_escape_what_people_typed(reseller, issue, customer):
    """The rows are built by a template tag (partner_tags.key_row, the hot page of issue 9): the
    same cells as before, and text typed by the partner or the customer stays text."""
    [used] = issue(seats=1, reference='<b>"Tom & Jerry\'s"</b>')
    [spare] = issue(seats=3, reference="")
    customer.account.name = "Zoë <i>Shop</i> & Co"
    customer.account.save(update_fields=["name"])
    redeem(customer, used)
    html = browser_for(reseller).get("/partner/keys/").content.decode()
    rows = dict(re.findall(r'<tr data-key-id="(\d+)">(.*?)</tr>', html, re.S))
    used_key, spare_key = key_of(used), key_of(spare)
    used_row, spare_row = rows[str(used_key.pk)], rows[str(spare_key.pk)]
    assert f'href="/partner/keys/{used_key.pk}/">{hint_of(used)}</a>' in used_row
    assert "1 seat · 12 mo" in used_row and "3 seats · 12 mo" in spare_row
    assert '<span class="chip key">Activated</span>' in used_row
    assert '<span class="chip ok">Available</span>' in spare_row
    assert "&lt;b&gt;&quot;Tom &amp; Jerry&#x27;s&quot;&lt;/b&gt;" in used_row and "<b>" not in used_row
    assert "Zoë &lt;i&gt;Shop&lt;/i&gt; &amp; Co" in used_row and "<i>" not in used_row
    assert f'href="/partner/keys/?batch={spare_key.batch_id}"' in spare_row
    assert f">#{spare_key.batch_id}</a>" in spare_row
    assert "<td>—</td>" in spare_row  # no reference, not activated
    today = clock.now().astimezone(ZoneInfo(reseller.partner.time_zone))
    assert f"{today.day} {today:%b} {today.year}" in used_row


def test_expired_and_voided_statuses(reseller, issue, customer, staff):
    [soon] = issue(redeem_by=clock.now() + timedelta(days=1))
    [used] = issue()
    redeem(customer, used)
    void_key(key=ActivationKey.objects.get(pk=key_ids([used])[0]), reason="chargeback", actor=staff.user)
    # Its redeem-by passes: the batch's and its key's (a key carries its batch's date).
    past = clock.now() - timedelta(minutes=1)
    KeyBatch.objects.filter(keys__pk__in=key_ids([soon])).update(redeem_by=past)
    ActivationKey.objects.filter(pk__in=key_ids([soon])).update(redeem_by=past)
    client = browser_for(reseller)
    assert hint_of(soon) in client.get("/partner/keys/table/?status=expired").content.decode()
    assert hint_of(used) in client.get("/partner/keys/table/?status=voided").content.decode()
    assert hint_of(used) not in client.get("/partner/keys/table/?status=activated").content.decode()
    dashboard = client.get("/partner/").content.decode()
    assert re.search(r'data-testid="total-expired">1<', dashboard)
    assert "and 1 voided" in dashboard


def test_keyset_pages_walk_every_key_once(reseller, issue, monkeypatch):
    monkeypatch.setattr(key_list_views, "PAGE_SIZE", 3)
    codes = issue(quantity=8)
    client = browser_for(reseller)
    seen, url = [], "/partner/keys/table/"
    for _ in range(5):
        response = client.get(url)
        html = response.content.decode()
        seen += [int(x) for x in re.findall(r'data-key-id="(\d+)"', html)]
        nxt = re.search(r'hx-get="(/partner/keys/table/\?[^"]*cursor=[^"]+)"', html)
        if not nxt:
            break
        url = nxt.group(1).replace("&amp;", "&")
        assert response["HX-Push-Url"].startswith("/partner/keys/")
    assert seen == sorted(key_ids(codes), reverse=True)
    # The address bar follows: the full page at a cursor shows that page.
    last_page = client.get(url.replace("/table/", "/"))
    assert last_page.status_code == 200 and "Newest" in last_page.content.decode()


def test_a_bad_cursor_starts_again(reseller, issue):
    issue(quantity=2)
    html = browser_for(reseller).get("/partner/keys/?cursor=%%%not-a-cursor").content.decode()
    assert "no longer valid" in html and len(re.findall(r'data-key-id="', html)) == 2


def test_filters_keep_the_address_bar_in_step(reseller, issue):
    issue()
    response = browser_for(reseller).get("/partner/keys/table/?status=available&product=pos&q=&batch=")
    assert response["HX-Push-Url"] == "/partner/keys/?status=available&product=pos"
    # Screen readers hear a one-line summary of the new table, not the table itself.
    assert re.search(r'<p id="keys-status"[^>]*hx-swap-oob="true">1 key shown</p>', response.content.decode())


# --------------------------------------------------------------------------- export


def test_export_is_streamed_without_codes(reseller, issue, customer, monkeypatch):
    monkeypatch.setattr(export_views, "EXPORT_CHUNK", 2)  # several keyset chunks
    codes = issue(quantity=5, reference='=HYPERLINK("x")')
    redeem(customer, codes[0])
    response = browser_for(reseller).get("/partner/keys/export.csv")
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    body = text_of(response)
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [int(r["id"]) for r in rows] == sorted(key_ids(codes), reverse=True)
    assert {r["hint"] for r in rows} == {hint_of(c) for c in codes}
    assert all(r["reference"].startswith("'=") for r in rows)  # no formula in a spreadsheet
    activated = next(r for r in rows if r["status"] == "activated")
    assert activated["activated_account"] == "Shop One" and activated["activated_at"]
    for code in codes:
        for variant in code_variants(code):
            assert variant not in body


def test_export_follows_the_filters(reseller, issue):
    issue(quantity=2)
    ints = issue(product="int", tier="scale", quantity=3)
    body = text_of(browser_for(reseller).get("/partner/keys/export.csv?product=int"))
    rows = list(csv.DictReader(io.StringIO(body)))
    assert {r["hint"] for r in rows} == {hint_of(c) for c in ints}
    bad = browser_for(reseller).get("/partner/keys/export.csv?q=a%00b")
    assert bad.status_code == 302


def test_export_for_excel_starts_with_a_byte_order_mark(reseller, issue):
    issue(quantity=2, reference="Müller • Süd")
    client = browser_for(reseller)
    plain = b"".join(client.get("/partner/keys/export.csv?product=pos").streaming_content)
    excel_response = client.get("/partner/keys/export.csv?product=pos&excel=1")
    excel = b"".join(excel_response.streaming_content)
    assert not plain.startswith(b"\xef\xbb\xbf")  # the plain file is unchanged
    assert excel.startswith(b"\xef\xbb\xbf") and excel[3:] == plain  # the same rows, after the BOM
    assert "Müller • Süd" in excel[3:].decode("utf-8")
    assert '-excel.csv"' in excel_response["Content-Disposition"]
    page = client.get("/partner/keys/?product=pos").content.decode()
    assert 'href="/partner/keys/export.csv?product=pos&amp;excel=1"' in page


# --------------------------------------------------------------------------- key detail, revoke


def test_detail_shows_the_history(reseller, issue, customer):
    [code] = issue(reference="Desk 4")
    [key_id] = key_ids([code])
    redeem(customer, code)
    html = browser_for(reseller).get(f"/partner/keys/{key_id}/").content.decode()
    assert hint_of(code) in html and "Desk 4" in html
    assert 'data-action="key.issued"' in html and 'data-action="key.activated"' in html
    assert "Shop One" in html  # the activating account, as in the API item
    assert code not in html
    assert "Revoke key" not in html and 'data-testid="revoke-unavailable"' in html


def test_revoke_with_a_reason(reseller, issue):
    [key_id] = key_ids(issue())
    client = browser_for(reseller)
    assert (
        client.post(f"/partner/keys/{key_id}/revoke/", {"reason": "  "}, HTTP_HX_REQUEST="true")
        .content.decode()
        .count("Reason is required")
        == 1
    )
    assert ActivationKey.objects.get(pk=key_id).status == "available"
    response = client.post(f"/partner/keys/{key_id}/revoke/", {"reason": "Order cancelled"}, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == f"/partner/keys/{key_id}/"
    key = ActivationKey.objects.get(pk=key_id)
    assert key.status == "revoked" and key.revoked_reason == "Order cancelled"
    page = client.get(f"/partner/keys/{key_id}/").content.decode()
    assert "revoked: it can no longer be activated" in page and "Order cancelled" in page
    assert 'data-action="key.revoked"' in page
    again = client.post(f"/partner/keys/{key_id}/revoke/", {"reason": "twice"}, HTTP_HX_REQUEST="true")
    assert "already revoked" in again.content.decode()


def test_revoke_without_javascript_redirects_with_a_message(reseller, issue):
    [key_id] = key_ids(issue())
    response = browser_for(reseller).post(f"/partner/keys/{key_id}/revoke/", {"reason": "gone"}, follow=True)
    assert response.redirect_chain[-1][0] == f"/partner/keys/{key_id}/"
    assert b"revoked: it can no longer be activated" in response.content


def test_an_activated_key_cannot_be_revoked(reseller, issue, customer):
    [code] = issue()
    [key_id] = key_ids([code])
    redeem(customer, code)
    client = browser_for(reseller)
    response = client.post(f"/partner/keys/{key_id}/revoke/", {"reason": "too late"}, HTTP_HX_REQUEST="true")
    assert "has been activated and can no longer be revoked" in response.content.decode()
    plain = client.post(f"/partner/keys/{key_id}/revoke/", {"reason": "too late"}, follow=True)
    assert b"can no longer be revoked" in plain.content
    assert ActivationKey.objects.get(pk=key_id).status == "activated"
    assert not Event.objects.filter(action="key.revoked").exists()


def test_revoke_needs_post(reseller, issue):
    [key_id] = key_ids(issue())
    assert browser_for(reseller).get(f"/partner/keys/{key_id}/revoke/").status_code == 405


# --------------------------------------------------------------------------- lookup


def test_lookup_by_full_key(reseller, issue):
    [code] = issue()
    [key_id] = key_ids([code])
    client = browser_for(reseller)
    typed = " " + code.lower().replace("-", " ").replace("o", "0") + " "
    response = client.post("/partner/lookup/", {"key": typed})
    assert response.status_code == 302 and response["Location"] == f"/partner/keys/{key_id}/"
    assert code not in response["Location"]


def test_lookup_unknown_and_malformed(reseller):
    client = browser_for(reseller)
    unknown = client.post("/partner/lookup/", {"key": generate_code("int")}).content.decode()
    assert "No such key among yours" in unknown
    bad = client.post("/partner/lookup/", {"key": "POS-ABCD"}).content.decode()
    assert "Invalid key format" in bad and "POS-XXXX-XXXX-XXXX" in bad
    code = generate_code("pos")
    typo = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert "One character looks mistyped" in client.post("/partner/lookup/", {"key": typo}).content.decode()


# --------------------------------------------------------------------------- API tokens


def test_api_tokens_shown_once_and_revocable(reseller):
    client = browser_for(reseller)
    created = client.post("/partner/tokens/", {"name": "Back office", "scopes": "all"})
    html = created.content.decode()
    plain = re.search(r'id="new-token">(fbt_[^<]+)<', html).group(1)
    assert "no-store" in created["Cache-Control"]
    assert plain not in client.get("/partner/tokens/").content.decode()
    api = Client(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert api.get("/api/v1/partner/keys").status_code == 200
    from fiscobridge.accounts.models import ApiToken

    token = ApiToken.objects.get(user=reseller.user, name="Back office")
    assert client.post(f"/partner/tokens/{token.pk}/revoke/").status_code == 302
    assert api.get("/api/v1/partner/keys").status_code == 401
    assert Event.objects.filter(action="api_token.revoked", partner=reseller.partner).exists()


# --------------------------------------------------------------------------- dashboard and chart


def test_dashboard_counts_per_package_and_chart(reseller, issue, customer):
    pos = issue(quantity=3)
    ints = issue(product="int", tier="starter", quantity=2)
    redeem(customer, pos[0])
    redeem(customer, ints[0], product="int")
    revoke_key(key=ActivationKey.objects.get(pk=key_ids([pos[1]])[0]), reason="x", actor=reseller.user)
    html = browser_for(reseller).get("/partner/").content.decode()
    pos_row = re.search(r'<tr data-package="pos">(.*?)</tr>', html, re.S).group(1)
    int_row = re.search(r'<tr data-package="int-starter">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r"<td>(?:<a [^>]*>)?(\d+)", pos_row) == ["1", "1", "1", "0", "0", "3"]
    assert re.findall(r"<td>(?:<a [^>]*>)?(\d+)", int_row) == ["1", "1", "0", "0", "0", "2"]
    assert re.search(r'data-testid="total-available">2<', html)
    assert 'role="img"' in html and "2 activations from" in html
    assert "Show the numbers as a table" in html
    assert "?status=available&amp;product=int&amp;tier=starter" in html


def test_bar_chart_geometry():
    from datetime import date

    days = [(date(2027, 1, 1) + timedelta(days=i), v) for i, v in enumerate([0, 3, 0, 7])]
    chart = bar_chart(days, label_every=2)
    assert chart.total == 10 and chart.busiest.value == 7
    assert [t.value for t in chart.ticks] == [0, 5, 10]  # 7 rounds up to 10
    assert chart.bars[3].height == 126.0 and chart.bars[3].y + 126.0 == chart.bottom  # 7/10 of 180 px
    assert chart.bars[0].height == 0 and chart.bars[1].y > chart.bars[3].y
    assert [label.day.day for label in chart.labels] == [2, 4]
    empty = bar_chart([(date(2027, 1, 1), 0)])
    assert empty.total == 0 and empty.busiest is None and [t.value for t in empty.ticks] == [0, 1]


def test_chart_bars_and_table_rows_leave_out_days_without_activations():
    from datetime import date

    from fiscobridge.partners.templatetags.partner_tags import chart_bars, chart_table_rows

    chart = bar_chart([(date(2027, 1, 1), 0), (date(2027, 1, 2), 1), (date(2027, 1, 3), 0), (date(2027, 1, 4), 7)])
    bars = chart_bars(chart)
    assert bars.count("<rect ") == 2
    assert "<title>2 Jan 2027: 1 activation</title>" in bars and "<title>4 Jan 2027: 7 activations</title>" in bars
    second = chart.bars[1]
    assert f'x="{second.x}" y="{second.y}" width="{second.width}" height="{second.height}"' in bars
    rows = chart_table_rows(chart)
    assert re.findall(r"<tr><td>(.*?)</td><td>(\d+)</td></tr>", rows) == [
        ("Sat 2 Jan 2027", "1"),
        ("Mon 4 Jan 2027", "7"),
    ]


def test_e_mailing_a_key_is_off_without_a_mail_server(reseller, settings):
    """The console backend would print the code into the server log: the feature is off instead."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    from django.test import Client

    browser = Client()
    browser.force_login(reseller.user)
    page = browser.get("/partner/issue/").content.decode()
    assert "no mail server configured" in page and 'name="email"' not in page
