"""Staff admin (issue 4, item 2): every page free of codes, HMACs and certificate secrets;
actions through the services (audit events appear); tenants created through the services;
the tenancy rule for users; nobody but staff gets in."""

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from fiscobridge.accounts.models import Account, ApiToken, Partner, User
from fiscobridge.audit.models import Event
from fiscobridge.integrations.models import ConnectionStatus
from fiscobridge.integrations.services import create_connection, record_invoice_usage
from fiscobridge.keys.models import ActivationKey, KeyStatus
from fiscobridge.keys.services import revoke_key
from fiscobridge.notifications.models import EmailKind, EmailStatus, OutboundEmail
from fiscobridge.pos.models import Certificate, CertificateStatus
from fiscobridge.pos.services import upload_certificate
from fiscobridge.subscriptions.models import Subscription
from fiscobridge.webhooks.models import Delivery, Endpoint, EventType
from fiscobridge.webhooks.services import create_endpoint
from tests.factories import PFX_PASSWORD, browser_for, key_of, new_pfx, redeem, run_tasks

NEW_PASSWORD = "a-long-new-tenant-password-9"


@pytest.fixture
def world(customer, reseller, other_reseller, staff, issue):
    """One of everything the admin shows, made through the services."""
    # A webhook endpoint that hears of everything below (its deliveries are in the admin too).
    hook = create_endpoint(
        partner=reseller.partner, actor=reseller.user, url="https://hooks.example.com/fb", events=EventType.values
    )
    pos_active, pos_revoked, pos_available = issue(quantity=3, seats=2, reference="order 42")
    [int_active] = issue(product="int", tier="growth", seats=2, months=6)
    [foreign] = issue(partner=other_reseller.partner)
    for code, product in ((pos_active, "pos"), (int_active, "int")):
        redeem(customer, code, product)
    revoke_key(key=key_of(pos_revoked), reason="lost in transit", actor=reseller.user)
    certificate = upload_certificate(
        account=customer.account, actor=customer.user, data=new_pfx(), password=PFX_PASSWORD
    )
    connection = create_connection(
        account=customer.account, actor=customer.user, type="xero", tier="growth", name="Books"
    )
    record_invoice_usage(connection=connection, invoices=12)
    return {
        "codes": [pos_active, pos_revoked, pos_available, int_active, foreign],
        "certificate": certificate,
        "connection": connection,
        "tokens": [customer.token, reseller.token, staff.token],
        "webhook_secret": hook.secret,
    }


def secrets_of(world) -> list[str]:
    """Everything no admin page may ever show."""
    values = []
    for code in world["codes"]:
        values += [code, code[4:], code[4:].replace("-", "")]
    values += list(ActivationKey.objects.values_list("code_hmac", flat=True))
    certificate = Certificate.objects.get(pk=world["certificate"].pk)
    values += [
        PFX_PASSWORD,
        bytes(certificate.file_encrypted).decode()[:40],
        bytes(certificate.password_encrypted).decode()[:40],
    ]
    values += [token.split("_", 2)[2] for token in world["tokens"]]  # the secret part of each API token
    values += list(ApiToken.objects.values_list("digest", flat=True))
    values += [world["webhook_secret"], world["webhook_secret"][6:]]  # the whsec_ signing secret
    values += [bytes(token).decode()[:40] for token in Endpoint.objects.values_list("secret_encrypted", flat=True)]
    return values


def assert_clean(response, secrets):
    assert response.status_code == 200, (response.status_code, response.get("Location"))
    text = response.content.decode()
    for secret in secrets:
        assert secret not in text, f"{secret[:12]}… shown on {response.wsgi_request.path}"


# --- no secret on any page -------------------------------------------------------------------


def test_no_admin_page_shows_a_code_an_hmac_or_a_certificate_secret(world, staff):
    client = browser_for(staff)
    secrets = secrets_of(world)
    assert_clean(client.get("/admin/"), secrets)
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert_clean(client.get(changelist), secrets)
        assert_clean(client.get(changelist, {"q": "a"}), secrets)
        for obj in model.objects.all()[:25]:
            assert_clean(
                client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])), secrets
            )
            assert_clean(
                client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[obj.pk])), secrets
            )
        if model_admin.has_add_permission(client.get("/admin/").wsgi_request):
            assert_clean(client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")), secrets)


def test_key_and_certificate_pages_show_what_staff_need(world, staff, customer):
    client = browser_for(staff)
    key = key_of(world["codes"][0])
    page = client.get(f"/admin/keys/activationkey/{key.pk}/change/").content.decode()
    assert key.hint in page and "Shop One" in page and "order 42" in page
    listing = client.get("/admin/keys/activationkey/", {"status": "revoked"}).content.decode()
    assert key_of(world["codes"][1]).hint in listing and key.hint not in listing
    # A pasted hint finds its key.
    found = client.get("/admin/keys/activationkey/", {"q": key.hint}).content.decode()
    assert key.hint in found and key_of(world["codes"][2]).hint not in found
    certificate = world["certificate"]
    page = client.get(f"/admin/pos/certificate/{certificate.pk}/change/").content.decode()
    assert certificate.uid in page and certificate.fingerprint in page and "Acme Retail SA" in page
    assert "file_encrypted" not in page and "password_encrypted" not in page


def test_a_partner_page_shows_its_users_and_keys_and_an_account_page_its_subscriptions_and_seats(
    world, staff, reseller, customer
):
    client = browser_for(staff)
    page = client.get(f"/admin/accounts/partner/{reseller.partner.pk}/change/").content.decode()
    assert reseller.user.email in page
    assert "available: 1" in page and "activated: 1" in page and "revoked: 1" in page  # Cloud POS keys
    assert "2 batches" in page
    listing = client.get("/admin/accounts/partner/").content.decode()
    assert "Reseller One" in listing and "Reseller Two" in listing

    page = client.get(f"/admin/accounts/account/{customer.account.pk}/change/").content.decode()
    assert customer.user.email in page
    assert "Cloud POS</strong>: 1 / 2" in page and "Integrations growth</strong>: 1 / 2" in page
    assert page.count("Activation key") >= 2  # the two subscriptions, with their source


# --- actions go through the services ---------------------------------------------------------


def run_action(client, url, action, objects, **confirm):
    """The admin's two steps: the action shows a confirmation page, the confirmation applies it."""
    selection = {"action": action, "_selected_action": [obj.pk for obj in objects]}
    page = client.post(url, selection)
    assert page.status_code == 200 and b'name="confirm"' in page.content
    return page, client.post(url, {**selection, "confirm": "yes", **confirm}, follow=True)


def test_revoking_keys_in_the_admin_goes_through_the_service(world, staff):
    client = browser_for(staff)
    available, activated = key_of(world["codes"][2]), key_of(world["codes"][0])
    url = "/admin/keys/activationkey/"
    page, done = run_action(client, url, "revoke_selected", [available, activated], reason="partner asked")
    assert_clean(page, secrets_of(world))
    available.refresh_from_db(), activated.refresh_from_db()
    assert available.status == KeyStatus.REVOKED and available.revoked_reason == "partner asked"
    assert activated.status == KeyStatus.ACTIVATED  # refused by the service, with its message
    assert "has been activated and can no longer be revoked" in done.content.decode()
    event = Event.objects.get(action="key.revoked", target_id=str(available.pk))
    assert event.actor == staff.user and event.details == {"reason": "partner asked"}


def test_an_admin_action_that_needs_a_reason_does_nothing_without_one(world, staff):
    client = browser_for(staff)
    key = key_of(world["codes"][2])
    response = client.post(
        "/admin/keys/activationkey/",
        {
            "action": "revoke_selected",
            "_selected_action": [key.pk],
            "confirm": "yes",
            "reason": "",
        },
    )
    assert response.status_code == 200 and b"This field is required" in response.content
    key.refresh_from_db()
    assert key.status == KeyStatus.AVAILABLE


def test_voiding_a_key_in_the_admin_ends_the_subscription_and_tells_both_sides(
    world, staff, customer, reseller, mailoutbox
):
    client = browser_for(staff)
    key = key_of(world["codes"][0])
    run_action(client, "/admin/keys/activationkey/", "void_selected", [key], reason="chargeback")
    run_tasks()
    key.refresh_from_db()
    assert key.voided_at is not None and key.voided_reason == "chargeback"
    assert Event.objects.filter(action="key.voided", actor=staff.user, target_id=str(key.pk)).exists()
    assert Event.objects.filter(action="subscription.ended", target_id=str(key.subscription.pk)).exists()
    assert key.subscription.ended_at is not None
    voided = {m.to[0]: m for m in mailoutbox if "voided" in m.subject or "has ended" in m.subject}
    assert set(voided) == {customer.user.email, reseller.user.email}
    assert OutboundEmail.objects.filter(kind=EmailKind.KEY_VOIDED, status=EmailStatus.SENT).count() == 1
    for mail in mailoutbox:
        for code in world["codes"]:
            assert code[4:] not in mail.body


def test_revoking_a_certificate_in_the_admin_goes_through_the_service(world, staff):
    client = browser_for(staff)
    certificate = world["certificate"]
    page, _ = run_action(client, "/admin/pos/certificate/", "revoke_selected", [certificate])
    assert_clean(page, secrets_of(world))
    certificate.refresh_from_db()
    assert certificate.status == CertificateStatus.REVOKED
    assert Event.objects.get(action="certificate.revoked", target_id=str(certificate.pk)).actor == staff.user


def test_removing_a_connection_in_the_admin_goes_through_the_service(world, staff):
    client = browser_for(staff)
    connection = world["connection"]
    run_action(client, "/admin/integrations/connection/", "remove_selected", [connection])
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.REMOVED
    assert Event.objects.get(action="connection.removed", target_id=str(connection.pk)).actor == staff.user


def test_staff_cannot_edit_or_delete_what_services_own(world, staff):
    client = browser_for(staff)
    key = key_of(world["codes"][2])
    for url in (
        f"/admin/keys/activationkey/{key.pk}/change/",
        f"/admin/pos/certificate/{world['certificate'].pk}/change/",
        f"/admin/subscriptions/subscription/{Subscription.objects.first().pk}/change/",
        f"/admin/audit/event/{Event.objects.first().pk}/change/",
    ):
        assert client.post(url, {"status": "available", "seats": 999}).status_code == 403
        assert client.get(url.replace("/change/", "/delete/")).status_code == 403
    assert client.get("/admin/keys/activationkey/add/").status_code == 403


def test_the_outbox_shows_pending_mail_and_staff_can_send_it(world, staff, mailoutbox, settings):
    client = browser_for(staff)
    settings.EMAIL_BACKEND = "tests.mail_backends.FailingBackend"
    run_tasks()  # the worker composes the activations' e-mails and cannot send them: pending
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    pending = list(OutboundEmail.objects.filter(status=EmailStatus.PENDING))
    assert pending
    listing = client.get("/admin/notifications/outboundemail/", {"status": "pending"}).content.decode()
    assert "Activation receipt" in listing
    client.post(
        "/admin/notifications/outboundemail/", {"action": "send_now", "_selected_action": [r.pk for r in pending]}
    )
    assert len(mailoutbox) == len(pending)
    assert not OutboundEmail.objects.filter(status=EmailStatus.PENDING).exists()


# --- tenants and users -----------------------------------------------------------------------


def test_staff_add_a_partner_whose_first_user_can_log_in(staff):
    client = browser_for(staff)
    response = client.post(
        "/admin/accounts/partner/add/",
        {
            "name": "Reseller Three",
            "time_zone": "Pacific/Apia",
            "email": "Boss@Reseller-Three.example",
            "password": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    partner = Partner.objects.get(name="Reseller Three")
    assert partner.time_zone == "Pacific/Apia"
    user = User.objects.get(partner=partner)
    assert user.email == "boss@reseller-three.example" and not user.is_staff
    assert Event.objects.filter(action="partner.created", partner=partner).exists()
    assert Event.objects.filter(action="admin.partner_created", actor=staff.user, partner=partner).exists()
    login = Client().post("/login/", {"username": "boss@reseller-three.example", "password": NEW_PASSWORD})
    assert login.status_code == 302


def test_staff_add_a_customer_account_whose_first_user_can_log_in(staff):
    client = browser_for(staff)
    response = client.post(
        "/admin/accounts/account/add/",
        {
            "name": "Shop Three",
            "email": "owner@shop-three.example",
            "time_zone": "Pacific/Efate",
            "password": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    account = Account.objects.get(name="Shop Three")
    assert account.time_zone == "Pacific/Efate"
    assert User.objects.get(account=account).email == "owner@shop-three.example"
    assert Event.objects.filter(action="account.created", account=account).exists()
    browser = Client()
    assert (
        browser.post("/login/", {"username": "owner@shop-three.example", "password": NEW_PASSWORD}).status_code == 302
    )
    assert browser.get("/api/v1/subscriptions").status_code == 200


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"email": "owner@shop-one.example"}, "already exists"),
        ({"password": "short"}, "too short"),
        ({"email": "not an e-mail"}, "valid email"),
        ({"name": ""}, "required"),
        ({"time_zone": "Mars/Olympus_Mons"}, "not one of the available choices"),
    ],
)
def test_a_refused_tenant_leaves_nothing_behind(customer, staff, fields, error):
    client = browser_for(staff)
    before = (Partner.objects.count(), User.objects.count())
    response = client.post(
        "/admin/accounts/partner/add/",
        {
            "name": "Reseller Four",
            "email": "new@reseller-four.example",
            "time_zone": "Pacific/Fiji",
            "password": NEW_PASSWORD,
            **fields,
        },
    )
    assert response.status_code == 200 and error in response.content.decode().lower()
    assert (Partner.objects.count(), User.objects.count()) == before


def test_staff_add_a_teammate_to_one_tenant_only(customer, reseller, staff):
    client = browser_for(staff)
    base = {"email": "new@shop-one.example", "name": "New", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    both = client.post(
        "/admin/accounts/user/add/", {**base, "account": customer.account.pk, "partner": reseller.partner.pk}
    )
    assert both.status_code == 200 and "not both" in both.content.decode()
    staff_and_tenant = client.post(
        "/admin/accounts/user/add/", {**base, "account": customer.account.pk, "is_staff": "on"}
    )
    assert staff_and_tenant.status_code == 200 and "Staff users belong to no" in staff_and_tenant.content.decode()
    nobody = client.post("/admin/accounts/user/add/", base)
    assert nobody.status_code == 200 and "or make the user staff" in nobody.content.decode()
    assert not User.objects.filter(email="new@shop-one.example").exists()

    ok = client.post(
        "/admin/accounts/user/add/", {**base, "email": "New@Shop-One.example", "account": customer.account.pk}
    )
    assert ok.status_code == 302
    user = User.objects.get(email="new@shop-one.example")
    assert user.account == customer.account and user.partner is None
    assert Event.objects.filter(action="admin.user_created", actor=staff.user, target_id=str(user.pk)).exists()
    assert Client().post("/login/", {"username": "new@shop-one.example", "password": NEW_PASSWORD}).status_code == 302

    # Moving a user into a second tenant is refused on the change form too.
    change = client.post(
        f"/admin/accounts/user/{user.pk}/change/",
        {
            "email": user.email,
            "name": "New",
            "account": customer.account.pk,
            "partner": reseller.partner.pk,
            "is_active": "on",
            "date_joined_0": "2027-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert change.status_code == 200 and "not both" in change.content.decode()
    user.refresh_from_db()
    assert user.partner is None


# --- who may enter ---------------------------------------------------------------------------


def test_only_staff_get_into_the_admin(world, customer, reseller, anonymous):
    urls = (
        ["/admin/"]
        + [reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist") for m in admin.site._registry]
        + ["/admin/accounts/partner/add/", f"/admin/keys/activationkey/{key_of(world['codes'][0]).pk}/change/"]
    )
    clients = [anonymous]
    for persona in (customer, reseller):
        client = Client()
        client.force_login(persona.user)
        clients.append(client)
    for client in clients:
        for url in urls:
            response = client.get(url)
            assert response.status_code == 302 and "/admin/login/" in response["Location"], url
        assert (
            client.post(
                "/admin/keys/activationkey/",
                {
                    "action": "revoke_selected",
                    "_selected_action": [key_of(world["codes"][2]).pk],
                    "confirm": "yes",
                    "reason": "x",
                },
            ).status_code
            == 302
        )
    assert key_of(world["codes"][2]).status == KeyStatus.AVAILABLE
    # A bearer token is not a way in either.
    assert customer.client.get("/admin/").status_code == 302
    assert re.search(r"/admin/login/", Client().get("/admin/")["Location"])


def test_webhook_endpoints_and_deliveries_are_in_the_admin(world, staff):
    client = browser_for(staff)
    assert Delivery.objects.exists()  # the world's batches and activations were told to the endpoint
    assert b"https://hooks.example.com/fb" in client.get("/admin/webhooks/endpoint/").content
    assert b"key.activated" in client.get("/admin/webhooks/delivery/").content
