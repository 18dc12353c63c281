"""A key is a bearer secret: after issuance its plain code exists nowhere in the system."""

import logging

from django.core.management import call_command
from django.db import connection

from fiscobridge.cli import main as cli_main
from fiscobridge.keys.codes import generate_code
from fiscobridge.webhooks.models import EventType
from tests.factories import code_variants, dump_database, post_json, run_tasks
from tests.webhook_receiver import start_receiver, stop_receiver


def test_codes_never_reach_the_database_or_the_logs(reseller, customer, caplog, capsys, tmp_path, settings):
    # The partner listens to every webhook event: each body sent is checked too (SPEC 9.2).
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    receiver = start_receiver()
    hook = post_json(reseller.client, "/api/v1/partner/webhooks", {"url": receiver.url, "events": EventType.values})
    assert hook.status_code == 201, hook.content
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    connection.force_debug_cursor = True  # every SQL statement and its parameters reach the log
    issued = post_json(
        reseller.client, "/api/v1/partner/keys", {"product": "pos", "seats": 1, "months": 12, "quantity": 20}
    ).json()
    codes = [k["code"] for k in issued["keys"]]
    out = tmp_path / "keys.csv"
    assert (
        cli_main(
            [
                "issue-keys",
                "--partner-email",
                reseller.user.email,
                "--product",
                "int",
                "--tier",
                "starter",
                "--seats",
                "1",
                "--months",
                "1",
                "--count",
                "5",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    codes += [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
    assert len(codes) == 25
    # Use them every way there is: validate, activate, mistype, look up, fail.
    post_json(customer.client, "/api/v1/keys/validate", {"key": codes[0], "product": "pos"})
    post_json(customer.client, "/api/v1/keys/activate", {"key": codes[0], "product": "pos"})
    post_json(customer.client, "/api/v1/keys/activate", {"key": codes[0], "product": "pos"})
    post_json(customer.client, "/api/v1/keys/activate", {"key": codes[1], "product": "int"})
    post_json(customer.client, "/api/v1/keys/activate", {"key": codes[20][4:], "product": "int"})
    post_json(customer.client, "/api/v1/keys/activate", {"key": codes[2][:-1] + "Z", "product": "pos"})
    post_json(reseller.client, "/api/v1/partner/keys/lookup", {"key": codes[3]})
    looked_up = post_json(reseller.client, "/api/v1/partner/keys/lookup", {"key": codes[4]}).json()
    post_json(reseller.client, f"/api/v1/partner/keys/{looked_up['id']}/revoke", {"reason": "lost"})
    stranger = generate_code("pos")
    post_json(customer.client, "/api/v1/keys/activate", {"key": stranger, "product": "pos"})
    codes.append(stranger)
    call_command("check", verbosity=0)
    run_tasks()  # the worker composes and stores the activations' e-mails: they are checked too

    dump = dump_database()
    logs = caplog.text + capsys.readouterr().err
    connection.force_debug_cursor = False
    stop_receiver(receiver)
    sent = "".join(f"{r.path} {r.headers} {r.body}" for r in receiver.requests)
    for kind in ("batch.issued", "key.activated", "key.revoked"):  # sanity: the webhooks were sent
        assert f'"type":"{kind}"' in sent, kind
    assert "INSERT INTO" in logs and "key.activated" in dump  # sanity: both hold what we expect
    assert "Activation receipt" in dump  # and the e-mails the worker wrote
    for code in codes:
        for variant in code_variants(code):
            assert variant not in dump, f"code found in the database: {variant}"
            assert variant not in logs, f"code found in the logs: {variant}"
            assert variant not in sent, f"code found in a webhook: {variant}"
