"""The `fiscobridge` command (SPEC 5.1), run in-process through `fiscobridge.cli.main`.

Exit status 1 with a one-line `error: …` is the contract for a refused command; argparse's own
usage errors exit with status 2. `serve` is the one command run as a real subprocess.
"""

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.http import HttpRequest
from django.test import Client

from fiscobridge.accounts.models import Account, ApiToken, Partner, User
from fiscobridge.cli import main
from fiscobridge.core import clock
from fiscobridge.keys.codes import code_digest, parse_key
from fiscobridge.keys.models import ActivationKey, KeyBatch
from tests.app_server import AppServer, stop_process_group
from tests.factories import PASSWORD, post_json, token_client

CSV_HEADER = ["code", "id", "product", "tier", "seats", "months", "reference", "batch", "redeem_by"]
ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    """Run the CLI; returns (exit status, stdout, stderr)."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def usage_error(capsys, *argv):
    """Run a command argparse must refuse; returns its stderr."""
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    assert exited.value.code == 2
    return capsys.readouterr().err


def read_csv(text: str) -> list[dict]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    assert header == CSV_HEADER
    return [dict(zip(header, row, strict=True)) for row in reader]


def issue_args(email, *extra, product="pos", seats="2", months="12", count="3"):
    return [
        "issue-keys",
        "--partner-email",
        email,
        "--product",
        product,
        "--seats",
        seats,
        "--months",
        months,
        "--count",
        count,
        "--quiet",
        *extra,
    ]


# --- create-partner / create-account --------------------------------------------------------


def test_create_partner_creates_partner_with_first_user(db, capsys):
    status, out, err = run(
        capsys, "create-partner", "--name", "Acme Resale", "--email", "Boss@Acme.example", "--password", PASSWORD
    )
    assert status == 0, err
    user = User.objects.get(email="boss@acme.example")
    assert user.partner is not None and user.partner.name == "Acme Resale"
    assert user.account is None and not user.is_staff
    assert user.check_password(PASSWORD)
    assert "Acme Resale" in out and "boss@acme.example" in out and str(user.partner.pk) in out
    assert PASSWORD not in out + err


def test_create_account_creates_customer_account_with_first_user(db, capsys):
    status, out, err = run(
        capsys, "create-account", "--name", "Corner Shop", "--email", "me@corner.example", "--password", PASSWORD
    )
    assert status == 0, err
    user = User.objects.get(email="me@corner.example")
    assert user.account.name == "Corner Shop" and user.partner is None
    assert user.check_password(PASSWORD)
    assert "Corner Shop" in out and "me@corner.example" in out
    assert PASSWORD not in out + err


def test_create_account_refuses_duplicate_email_with_clear_message(db, capsys):
    assert run(capsys, "create-account", "--name", "One", "--email", "dup@shop.example", "--password", PASSWORD)[0] == 0
    status, out, err = run(
        capsys, "create-account", "--name", "Two", "--email", "DUP@shop.example", "--password", PASSWORD
    )
    assert status == 1
    assert err.startswith("error: ") and "already exists" in err
    assert Account.objects.filter(name="Two").count() == 0  # no orphan account left behind
    assert User.objects.filter(email="dup@shop.example").count() == 1


def test_create_partner_refuses_an_email_a_customer_already_uses(db, capsys):
    run(capsys, "create-account", "--name", "Shop", "--email", "taken@x.example", "--password", PASSWORD)
    status, _, err = run(
        capsys, "create-partner", "--name", "Resale", "--email", "taken@x.example", "--password", PASSWORD
    )
    assert status == 1 and "already exists" in err
    assert not Partner.objects.filter(name="Resale").exists()


@pytest.mark.parametrize("password", ["short1", "password123", "12345678901", "weak@shop.example"])
def test_create_account_refuses_weak_password(db, capsys, password):
    status, out, err = run(
        capsys, "create-account", "--name", "Weak", "--email", "weak@shop.example", "--password", password
    )
    assert status == 1
    assert err.startswith("error: ") and "password" in err.lower()
    assert password not in err
    assert not User.objects.filter(email="weak@shop.example").exists()
    assert not Account.objects.filter(name="Weak").exists()


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@b.example", "two@@at.example", ""])
def test_create_account_refuses_invalid_email(db, capsys, email):
    status, _, err = run(capsys, "create-account", "--name", "Bad", "--email", email, "--password", PASSWORD)
    assert status == 1
    assert err.startswith("error: ") and "e-mail" in err
    assert not Account.objects.filter(name="Bad").exists()


def test_create_partner_refuses_blank_name(db, capsys):
    status, _, err = run(capsys, "create-partner", "--name", "   ", "--email", "p@x.example", "--password", PASSWORD)
    assert status == 1 and "name" in err
    assert not User.objects.filter(email="p@x.example").exists()


# --- create-token ----------------------------------------------------------------------------


def test_create_token_prints_token_alone_on_last_line_and_it_authenticates(customer, capsys):
    status, out, err = run(capsys, "create-token", "--email", customer.user.email)
    assert status == 0, err
    token = out.rstrip("\n").splitlines()[-1]
    assert token == token.strip() and " " not in token and token.startswith("fbt_")
    response = token_client(token).get("/api/v1/subscriptions")
    assert response.status_code == 200
    assert "pos" in response.json()
    assert ApiToken.objects.filter(user=customer.user, name="cli").count() == 1


def test_create_token_for_partner_authenticates_partner_endpoints(reseller, capsys):
    status, out, _ = run(capsys, "create-token", "--email", reseller.user.email.upper(), "--name", "laptop")
    assert status == 0
    token = out.splitlines()[-1]
    assert token_client(token).get("/api/v1/partner/keys").status_code == 200
    assert ApiToken.objects.filter(user=reseller.user, name="laptop").exists()


def test_create_token_each_run_gives_a_new_token(customer, capsys):
    first = run(capsys, "create-token", "--email", customer.user.email)[1].splitlines()[-1]
    second = run(capsys, "create-token", "--email", customer.user.email)[1].splitlines()[-1]
    assert first != second
    assert token_client(first).get("/api/v1/subscriptions").status_code == 200
    assert token_client(second).get("/api/v1/subscriptions").status_code == 200


def test_create_token_with_scopes_gives_a_token_limited_to_them(customer, capsys):
    status, out, err = run(
        capsys, "create-token", "--email", customer.user.email, "--scope", "pos:entitlement", "--scope", "read"
    )
    assert status == 0, err
    lines = out.rstrip("\n").splitlines()
    token = lines[-1]
    assert token.startswith("fbt_") and " " not in token  # still alone on the last line
    assert "scopes: pos:entitlement read" in out
    stored = ApiToken.objects.get(user=customer.user, name="cli")
    assert stored.scope_set == {"pos:entitlement", "read"}
    assert token_client(token).get("/api/v1/subscriptions").status_code == 200  # read
    refused = post_json(token_client(token), "/api/v1/keys/validate", {"key": "POS-2222-2222-2222", "product": "pos"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"


def test_create_token_without_scope_has_full_access(customer, capsys):
    assert run(capsys, "create-token", "--email", customer.user.email)[0] == 0
    assert ApiToken.objects.get(user=customer.user, name="cli").scopes == "all"


@pytest.mark.parametrize("scope", ["partner:keys", "everything", "all --scope read"])
def test_create_token_refuses_a_scope_the_user_cannot_hold(customer, capsys, scope):
    argv = ["create-token", "--email", customer.user.email]
    for part in scope.split(" --scope "):
        argv += ["--scope", part]
    status, out, err = run(capsys, *argv)
    assert status == 1 and out == ""
    assert err.startswith("error: ") and ("Not a scope" in err or "Full access" in err), err
    assert not ApiToken.objects.filter(user=customer.user, name="cli").exists()


def test_create_token_refuses_unknown_email(db, capsys):
    status, out, err = run(capsys, "create-token", "--email", "nobody@nowhere.example")
    assert status == 1
    assert err.startswith("error: ") and "nobody@nowhere.example" in err
    assert out == ""
    assert ApiToken.objects.count() == 0


def test_create_token_refuses_inactive_user(customer, capsys):
    User.objects.filter(pk=customer.user.pk).update(is_active=False)
    status, _, err = run(capsys, "create-token", "--email", customer.user.email)
    assert status == 1 and "no active user" in err


# --- issue-keys ------------------------------------------------------------------------------


def test_issue_keys_writes_csv_with_header_and_valid_codes_to_stdout(reseller, capsys):
    status, out, err = run(capsys, *issue_args(reseller.user.email, "--reference", "order 77", count="5"))
    assert status == 0, err
    rows = read_csv(out)
    assert len(rows) == 5
    batch = KeyBatch.objects.get()
    assert batch.partner == reseller.partner and batch.quantity == 5 and batch.reference == "order 77"
    codes = [row["code"] for row in rows]
    assert len(set(codes)) == 5
    for row in rows:
        parsed = parse_key(row["code"])
        assert parsed.canonical == row["code"] and parsed.product == "pos"
        key = ActivationKey.objects.get(pk=int(row["id"]))
        assert key.code_hmac == code_digest(row["code"])  # the code is the key, stored only as its HMAC
        assert key.partner == reseller.partner and key.seats == 2 and key.months == 12
        assert row["product"] == "pos" and row["tier"] == "" and row["seats"] == "2" and row["months"] == "12"
        assert row["batch"] == str(batch.pk) and row["reference"] == "order 77" and row["redeem_by"] == ""
    for code in codes:
        assert code not in err


def test_issue_keys_integrations_with_tier_and_redeem_by(reseller, capsys):
    redeem_by = (clock.now() + timedelta(days=90)).date().isoformat()
    status, out, err = run(
        capsys,
        *issue_args(
            reseller.user.email,
            "--tier",
            "growth",
            "--redeem-by",
            redeem_by,
            product="int",
            seats="10",
            months="60",
            count="2",
        ),
    )
    assert status == 0, err
    rows = read_csv(out)
    assert len(rows) == 2
    for row in rows:
        assert parse_key(row["code"]).product == "int" and row["code"].startswith("INT-")
        assert row["tier"] == "growth" and row["seats"] == "10" and row["months"] == "60"
        # A bare date means "through that day": the deadline is the next midnight UTC.
        assert row["redeem_by"].startswith((date.fromisoformat(redeem_by) + timedelta(days=1)).isoformat())
    assert KeyBatch.objects.get().redeem_by is not None


def test_issue_keys_date_only_redeem_by_keeps_keys_usable_through_that_day(reseller, capsys):
    """Through that day in the partner's zone: the next local midnight (Pacific/Fiji by default)."""
    fiji = ZoneInfo("Pacific/Fiji")
    today = clock.now().astimezone(fiji).date()
    status, out, err = run(capsys, *issue_args(reseller.user.email, "--redeem-by", today.isoformat(), count="1"))
    assert status == 0, err
    redeem_by = KeyBatch.objects.get().redeem_by
    assert redeem_by == datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=fiji)
    # The CSV says it in the partner's zone, with the offset.
    assert read_csv(out)[0]["redeem_by"] == redeem_by.astimezone(fiji).isoformat(timespec="seconds")
    assert read_csv(out)[0]["redeem_by"].endswith("T00:00:00+12:00")


def test_create_tenants_in_a_chosen_time_zone(db, capsys):
    status, out, _ = run(
        capsys,
        "create-partner",
        "--name",
        "Apia Resale",
        "--email",
        "a@apia.example",
        "--password",
        "correct horse battery",
        "--time-zone",
        "Pacific/Apia",
    )
    assert status == 0 and "time zone Pacific/Apia" in out
    assert Partner.objects.get(name="Apia Resale").time_zone == "Pacific/Apia"
    status, _, _ = run(
        capsys,
        "create-account",
        "--name",
        "Port Vila Shop",
        "--email",
        "s@vila.example",
        "--password",
        "correct horse battery",
    )
    assert status == 0 and Account.objects.get(name="Port Vila Shop").time_zone == "Pacific/Fiji"  # the default
    status, _, err = run(
        capsys,
        "create-account",
        "--name",
        "Nowhere",
        "--email",
        "n@nowhere.example",
        "--password",
        "correct horse battery",
        "--time-zone",
        "Pacific/Nowhere",
    )
    assert status == 1 and "time zone" in err.lower() and not Account.objects.filter(name="Nowhere").exists()


def test_issued_keys_from_cli_can_be_activated_by_a_customer(reseller, customer, capsys):
    _, out, _ = run(capsys, *issue_args(reseller.user.email, count="1"))
    code = read_csv(out)[0]["code"]
    response = post_json(customer.client, "/api/v1/keys/activate", {"key": code, "product": "pos"})
    assert response.status_code == 201
    assert response.json()["subscription"]["seats"] == 2


def test_issue_keys_shows_progress_on_stderr_and_keeps_stdout_pure_csv(reseller, capsys):
    argv = [a for a in issue_args(reseller.user.email, count="4") if a != "--quiet"]
    status, out, err = run(capsys, *argv)
    assert status == 0
    assert len(read_csv(out)) == 4
    assert "Issuing keys" in err


def test_issue_keys_out_writes_a_new_file_with_mode_600(reseller, capsys, tmp_path):
    target = tmp_path / "keys.csv"
    status, out, err = run(capsys, *issue_args(reseller.user.email, "--out", str(target), count="3"))
    assert status == 0, err
    assert (target.stat().st_mode & 0o777) == 0o600
    rows = read_csv(target.read_text())
    assert len(rows) == 3
    for row in rows:
        assert row["code"] not in out and row["code"] not in err  # written once, to the file only
        assert parse_key(row["code"]).canonical == row["code"]
    assert str(target) in err


def test_issue_keys_out_refuses_an_existing_file_and_issues_nothing(reseller, capsys, tmp_path):
    target = tmp_path / "keys.csv"
    target.write_text("precious\n")
    status, out, err = run(capsys, *issue_args(reseller.user.email, "--out", str(target)))
    assert status == 1
    assert err.startswith("error: ") and "already exists" in err
    assert target.read_text() == "precious\n"
    assert KeyBatch.objects.count() == 0 and ActivationKey.objects.count() == 0


def test_issue_keys_out_leaves_no_file_when_issuing_fails(reseller, capsys, tmp_path):
    target = tmp_path / "keys.csv"
    status, _, err = run(capsys, *issue_args(reseller.user.email, "--out", str(target), seats="0"))
    assert status == 1 and "Seats" in err
    assert not target.exists()


def test_issue_keys_out_into_missing_directory_is_a_clear_error(reseller, capsys, tmp_path):
    status, _, err = run(capsys, *issue_args(reseller.user.email, "--out", str(tmp_path / "nope" / "keys.csv")))
    assert status == 1 and err.startswith("error: cannot create")
    assert KeyBatch.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "extra", "message"),
    [
        ({"product": "int"}, [], "tier"),
        ({"product": "pos"}, ["--tier", "starter"], "no tier"),
        ({"seats": "0"}, [], "Seats"),
        ({"seats": "1001"}, [], "Seats"),
        ({"seats": "-3"}, [], "Seats"),
        ({"months": "0"}, [], "Months"),
        ({"months": "61"}, [], "Months"),
        ({"count": "0"}, [], "Quantity"),
        ({"count": "-1"}, [], "Quantity"),
        ({"count": "1000001"}, [], "Quantity"),
        ({}, ["--redeem-by", "2001-01-01"], "future"),
        ({}, ["--redeem-by", "next tuesday"], "--redeem-by"),
        ({}, ["--reference", "r" * 201], "Reference"),
    ],
)
def test_issue_keys_refuses_invalid_package_with_clear_message(reseller, capsys, overrides, extra, message):
    status, out, err = run(capsys, *issue_args(reseller.user.email, *extra, **overrides))
    assert status == 1
    assert err.startswith("error: ") and message in err
    assert out == ""
    assert KeyBatch.objects.count() == 0 and ActivationKey.objects.count() == 0


def test_issue_keys_refuses_redeem_by_earlier_today(reseller, capsys):
    past = (clock.now() - timedelta(minutes=5)).isoformat()
    status, _, err = run(capsys, *issue_args(reseller.user.email, "--redeem-by", past))
    assert status == 1 and "future" in err
    assert KeyBatch.objects.count() == 0


def test_issue_keys_refuses_a_customer_email(customer, capsys):
    status, out, err = run(capsys, *issue_args(customer.user.email))
    assert status == 1
    assert "not a partner" in err
    assert out == "" and KeyBatch.objects.count() == 0


def test_issue_keys_refuses_an_unknown_email(db, capsys):
    status, _, err = run(capsys, *issue_args("ghost@nowhere.example"))
    assert status == 1 and "no active user" in err


@pytest.mark.parametrize("option", ["--seats", "--months", "--count"])
def test_issue_keys_non_numeric_number_is_a_usage_error(reseller, capsys, option):
    argv = issue_args(reseller.user.email)
    argv[argv.index(option) + 1] = "lots"
    err = usage_error(capsys, *argv)
    assert "'lots' is not a whole number" in err and option in err
    assert KeyBatch.objects.count() == 0


def test_issue_keys_unknown_product_or_tier_is_a_usage_error(reseller, capsys):
    assert "invalid choice" in usage_error(capsys, *issue_args(reseller.user.email, product="cloud"))
    assert "invalid choice" in usage_error(capsys, *issue_args(reseller.user.email, "--tier", "gold", product="int"))


# --- demo ------------------------------------------------------------------------------------

LOGIN_LINE = re.compile(r"^\s+(staff|partner|customer)\s+(\S+@\S+)\s+(\S+)\s*$")
KEY_LINE = re.compile(r"^\s+((?:POS|INT)-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\s+(.+)$")


def parse_demo(out: str):
    lines = out.splitlines()
    logins = {m.group(1): (m.group(2), m.group(3)) for m in map(LOGIN_LINE.match, lines) if m}
    keys = [m.group(1) for m in map(KEY_LINE.match, lines) if m]
    token = lines[lines.index(next(line for line in lines if "API token" in line)) + 1].strip()
    return logins, keys, token


@pytest.fixture
def demo_data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path  # the demo keeps its passwords in the data directory
    return tmp_path


def test_demo_is_idempotent_and_prints_working_logins_keys_and_token(db, capsys, demo_data_dir):
    first = run(capsys, "demo")
    second = run(capsys, "demo")
    assert first[0] == 0 and second[0] == 0, first[2] + second[2]
    logins1, keys1, token1 = parse_demo(first[1])
    logins2, keys2, token2 = parse_demo(second[1])

    assert set(logins1) == {"staff", "partner", "customer"}
    assert logins1 == logins2  # same e-mails and passwords on every run
    assert Partner.objects.count() == 1 and Account.objects.count() == 1
    assert User.objects.filter(is_staff=True).count() == 1
    for email, _ in logins1.values():
        assert User.objects.filter(email=email).count() == 1
    staff = User.objects.get(email=logins1["staff"][0])
    partner_user = User.objects.get(email=logins1["partner"][0])
    customer_user = User.objects.get(email=logins1["customer"][0])
    assert staff.is_staff and staff.is_superuser
    assert partner_user.partner is not None and customer_user.account is not None
    for role, (email, password) in logins1.items():
        assert Client().login(request=HttpRequest(), username=email, password=password), role
    assert (demo_data_dir / "demo-logins.json").stat().st_mode & 0o777 == 0o600

    # The demo customer's first subscription is made once, not once per run.
    assert customer_user.account.subscriptions.count() == 1

    # Six fresh keys per run (three of each product), new every run, all valid for the customer.
    assert len(keys1) == 6 and len(keys2) == 6
    assert len(set(keys1) | set(keys2)) == 12
    assert sum(k.startswith("POS-") for k in keys1) == 3 and sum(k.startswith("INT-") for k in keys1) == 3
    assert token1 != token2
    client = token_client(token2)
    for code in keys1 + keys2:
        product = parse_key(code).product
        response = post_json(client, "/api/v1/keys/validate", {"key": code, "product": product})
        assert response.status_code == 200, response.content
        assert response.json()["product"] == product
    assert token_client(token1).get("/api/v1/subscriptions").json()["pos"]["seats_total"] == 3


# --- manage ----------------------------------------------------------------------------------


def test_manage_check_runs_django_system_checks(db, capsys):
    status, out, _ = run(capsys, "manage", "check")
    assert status == 0
    assert "no issues" in out


def test_manage_passes_options_through(db, capsys):
    status, out, _ = run(capsys, "manage", "showmigrations", "keys", "--plan")
    assert status == 0
    assert "keys." in out


def test_manage_unknown_command_fails(db, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["manage", "no-such-command"])
    assert exited.value.code == 1
    assert "Unknown command" in capsys.readouterr().err


# --- argument errors -------------------------------------------------------------------------


def test_unknown_command_is_a_usage_error(capsys):
    assert "invalid choice" in usage_error(capsys, "frobnicate")


def test_no_command_is_a_usage_error(capsys):
    assert "required" in usage_error(capsys)


@pytest.mark.parametrize(
    ("argv", "missing"),
    [
        (["create-partner", "--name", "N", "--email", "e@x.example"], "--password"),
        (["create-account", "--email", "e@x.example", "--password", PASSWORD], "--name"),
        (["create-token"], "--email"),
        (["issue-keys", "--product", "pos", "--seats", "1", "--months", "1", "--count", "1"], "--partner-email"),
        (
            ["issue-keys", "--partner-email", "p@x.example", "--seats", "1", "--months", "1", "--count", "1"],
            "--product",
        ),
        (
            ["issue-keys", "--partner-email", "p@x.example", "--product", "pos", "--months", "1", "--count", "1"],
            "--seats",
        ),
    ],
)
def test_missing_required_argument_is_a_usage_error(capsys, argv, missing):
    err = usage_error(capsys, *argv)
    assert "required" in err and missing in err


def test_serve_rejects_non_numeric_port(capsys):
    assert "not a whole number" in usage_error(capsys, "serve", "--port", "http")


@pytest.mark.parametrize(("option", "value"), [("--port", "0"), ("--port", "-80"), ("--workers", "0")])
def test_serve_refuses_a_port_or_worker_count_below_one(capsys, option, value):
    err = usage_error(capsys, "serve", option, value)
    assert f"'{value}' is not a whole number of at least 1" in err and option in err


# --- serve (a real gunicorn in a subprocess) -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read().decode(errors="replace")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`fiscobridge serve` with its own data directory and SQLite database; yields (base URL, its dir)."""
    tmp_path = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "POSTGRES_TEST_NAME", "SQLITE_TEST_NAME"}}
    env.update(
        FISCOBRIDGE_DATA_DIR=str(tmp_path / "data"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        FISCOBRIDGE_ENV="development",
        DEBUG="false",
    )
    executable = Path(sys.executable).with_name("fiscobridge")
    log = open(tmp_path / "serve.log", "w+")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [str(executable), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"serve exited with {process.returncode}:\n{log.read()[-3000:]}")
            try:
                if _get(base + "/healthz", timeout=2)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"serve did not answer /healthz within 45 s:\n{log.read()[-3000:]}")
            time.sleep(0.3)
        yield base, tmp_path
    finally:
        stop_process_group(process, timeout=15)
        log.close()


def test_serve_answers_health_openapi_and_offline_docs(served):
    served, _ = served
    status, content_type, body = _get(served + "/healthz")
    assert status == 200 and json.loads(body) == {"ok": True}

    status, content_type, body = _get(served + "/api/v1/openapi.json")
    assert status == 200 and "json" in content_type
    document = json.loads(body)
    assert "openapi" in document
    assert "/api/v1/keys/activate" in document["paths"]

    status, content_type, body = _get(served + "/api/v1/docs")
    assert status == 200 and "text/html" in content_type
    assets = re.findall(r"<(?:script|link)\b[^>]*?\b(?:src|href)=[\"']([^\"']+)[\"']", body, flags=re.I)
    assert assets, "the docs page loads its viewer from static assets"
    for asset in assets:
        assert asset.startswith("/static/"), f"docs page loads {asset} from outside the server"
    assert not re.search(r"<(?:script|link)\b[^>]*https?://", body, flags=re.I)
    for asset in assets:  # and each asset is really served (whitenoise, collected by `serve`)
        assert _get(served + asset)[0] == 200


def test_serve_applies_migrations_to_its_own_database(served):
    served, tmp_path = served
    # An API call that reads the database works: migrations ran on the fresh SQLite file.
    request = urllib.request.Request(served + "/api/v1/subscriptions", headers={"Authorization": "Bearer fbt_x_y"})
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(request, timeout=5)
    assert failed.value.code == 401
    assert json.loads(failed.value.read())["error"]["code"] == "unauthenticated"
    assert (tmp_path / "serve.sqlite3").stat().st_size > 0


# --- the release step and serve --no-migrate ---------------------------------------------------


class _Exec(Exception):
    """Stands in for os.execv: `serve` would become gunicorn here."""


@pytest.fixture
def management_calls(monkeypatch):
    """Records the management commands `serve`/`migrate` run instead of running them, and stops
    `serve` where it would exec gunicorn; yields (commands, gunicorn argv)."""
    import django.core.management

    commands, execs = [], []
    monkeypatch.setattr(django.core.management, "call_command", lambda name, **options: commands.append(name))

    def fake_execv(path, argv):
        execs.append(argv)
        raise _Exec

    monkeypatch.setattr(os, "execv", fake_execv)
    monkeypatch.delenv("WEB_THREADS", raising=False)
    return commands, execs


def test_serve_by_default_migrates_then_collects_static_then_runs_gunicorn(management_calls, capsys):
    commands, execs = management_calls
    with pytest.raises(_Exec):
        main(["serve", "--workers", "1"])
    assert commands == ["check", "migrate", "collectstatic"]  # the production guard rails first
    [argv] = execs
    assert argv[2:5] == ["gunicorn", "fiscobridge.wsgi:application", "--config"]


def test_serve_no_migrate_collects_static_but_never_migrates(management_calls, capsys):
    commands, execs = management_calls
    with pytest.raises(_Exec):
        main(["serve", "--no-migrate", "--host", "0.0.0.0", "--port", "8155", "--workers", "2"])
    assert commands == ["check", "collectstatic"]
    [argv] = execs
    assert argv[argv.index("--bind") + 1] == "0.0.0.0:8155" and argv[argv.index("--workers") + 1] == "2"


def test_migrate_command_is_the_release_step(management_calls, capsys):
    commands, execs = management_calls
    status, out, _ = run(capsys, "migrate")
    assert status == 0 and commands == ["migrate", "collectstatic"] and execs == []
    assert "Release step done" in out


def test_migrate_command_applies_migrations_and_collects_static_files(transactional_db, capsys, settings, tmp_path):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    settings.STATIC_ROOT = tmp_path / "static"
    status, out, _ = run(capsys, "migrate", "--quiet")
    assert status == 0 and f"static files collected in {settings.STATIC_ROOT}" in out
    assert (tmp_path / "static" / "css" / "fiscobridge.css").is_file()
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []


# --- gunicorn settings (fiscobridge/gunicorn_conf.py) ------------------------------------------

GUNICORN_ENV = (
    "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "GUNICORN_MAX_REQUESTS",
    "GUNICORN_MAX_REQUESTS_JITTER",
    "GUNICORN_KEEPALIVE",
)


def gunicorn_settings(monkeypatch, **env):
    """gunicorn's Config after loading our config module, as `gunicorn --config` does."""
    import runpy

    from gunicorn.config import Config

    for name in GUNICORN_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = Config()
    for name, value in runpy.run_module("fiscobridge.gunicorn_conf").items():
        if name in config.settings:
            config.set(name, value)  # gunicorn validates each value here
    return config


def test_gunicorn_defaults(monkeypatch):
    config = gunicorn_settings(monkeypatch)
    assert (config.timeout, config.graceful_timeout, config.keepalive) == (60, 30, 5)
    assert (config.max_requests, config.max_requests_jitter) == (1000, 100)
    assert config.preload_app is True  # workers are forked with the app loaded


def test_the_wsgi_module_loads_what_a_first_request_would():
    """gunicorn's master imports fiscobridge.wsgi once (preload_app): the URL configuration with
    every view, and the URL tables of the root and of each namespace, are ready before a worker
    is forked, so a replaced worker does not import or compile them again on a request."""
    probe = (
        "import sys, fiscobridge.wsgi\n"
        "from django.urls import get_resolver\n"
        "from django.urls.resolvers import get_ns_resolver\n"
        "root = get_resolver()\n"
        "print(sorted(root.namespace_dict), 'fiscobridge.urls' in sys.modules, root._populated,\n"
        "      all(r._populated for _, r in root.namespace_dict.values()), get_ns_resolver.cache_info().currsize)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "fiscobridge.settings"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["['admin',", "'api',", "'partners']", "True", "True", "True", "3"]


@pytest.mark.django_db(transaction=True)
def test_replaced_workers_keep_answering_from_the_database():
    """Every third request replaces a worker (a fork of the master, which closed any database
    connection before forking): each answer still comes from the database."""
    with AppServer(workers=2, env={"GUNICORN_MAX_REQUESTS": "3", "GUNICORN_MAX_REQUESTS_JITTER": "0"}) as server:
        answers = [httpx.get(f"{server.url}/readyz", timeout=30) for _ in range(18)]
        log = server.log_text()
    assert [answer.json()["checks"]["database"] for answer in answers] == ["ok"] * 18
    assert log.count("Booting worker") >= 2 + 5, log[-3000:]


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    config = gunicorn_settings(
        monkeypatch,
        GUNICORN_TIMEOUT="90",
        GUNICORN_GRACEFUL_TIMEOUT="20",
        GUNICORN_MAX_REQUESTS="0",
        GUNICORN_MAX_REQUESTS_JITTER="7",
        GUNICORN_KEEPALIVE="15",
    )
    assert (config.timeout, config.graceful_timeout, config.keepalive) == (90, 20, 15)
    assert (config.max_requests, config.max_requests_jitter) == (0, 7)


@pytest.mark.parametrize("value", ["ten", "-1", "1.5"])
def test_gunicorn_refuses_a_setting_that_is_not_a_whole_number(monkeypatch, value):
    with pytest.raises(SystemExit) as stopped:
        gunicorn_settings(monkeypatch, GUNICORN_MAX_REQUESTS=value)
    assert str(stopped.value) == f"error: GUNICORN_MAX_REQUESTS must be a whole number of at least 0, not {value!r}"
