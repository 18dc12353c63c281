"""The layout rules of docs/architecture.md, checked on the real tree and shown to fail on a bad one."""

import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest
from django.apps import apps

from fiscobridge.audit.models import Event
from fiscobridge.web.cursor import decode_cursor, encode_cursor
from fiscobridge.web.errors import InvalidCursor

ROOT = Path(__file__).resolve().parent.parent
CHECK_LAYERS = ROOT / "scripts" / "check_layers.py"


def _check_layers(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK_LAYERS), str(root)], capture_output=True, text=True, timeout=60)


def test_no_module_imports_a_package_of_its_own_layer_or_above():
    result = _check_layers(ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("keys/bad.py", "from fiscobridge.portal import views\n"),  # a domain app importing a page module
        ("partners/bad.py", "from fiscobridge.portal.views import home\n"),  # one portal importing the other
        ("core/bad.py", "import fiscobridge.accounts.models\n"),
    ],
)
def test_the_layer_check_fails_on_an_upward_import(tmp_path, path, line):
    target = tmp_path / "fiscobridge" / path
    target.parent.mkdir(parents=True)
    target.write_text(line)
    result = _check_layers(tmp_path)
    assert result.returncode == 1 and "may not import" in result.stderr


@pytest.mark.parametrize("key_id", [1, 42, 2**63 - 1])
def test_a_cursor_names_the_key_it_was_made_from(key_id):
    assert decode_cursor(encode_cursor(key_id)) == key_id


@pytest.mark.parametrize("cursor", ["", "!!!", "eDQy", encode_cursor(0), encode_cursor(2**63), "aw", "a3gx"])
def test_a_cursor_we_did_not_make_is_invalid(cursor):
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)


def test_a_cursor_past_the_largest_id_is_refused_by_the_api_and_ignored_by_the_page(reseller, issue):
    issue(quantity=2)
    cursor = encode_cursor(2**63)
    answer = reseller.client.get(f"/api/v1/partner/keys?cursor={cursor}")
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_cursor"
    reseller.client.force_login(reseller.user)
    page = reseller.client.get(f"/partner/keys/?cursor={cursor}")
    assert page.status_code == 200
    assert "That page link is no longer valid" in page.content.decode()


def test_audit_migration_renames_stored_actions_both_ways(db):
    migration = import_module("fiscobridge.audit.migrations.0002_rename_actions")
    old = ["key.validate.succeeded", "key.validate.failed", "key.activate.failed", "stripe.event.handled"]
    for action in [*old, "key.activated"]:
        Event.objects.create(action=action)
    migration.forwards(apps, None)
    assert sorted(Event.objects.values_list("action", flat=True)) == sorted(
        ["key.validated", "key.validation_failed", "key.activation_failed", "stripe.event_handled", "key.activated"]
    )
    migration.backwards(apps, None)
    assert sorted(Event.objects.values_list("action", flat=True)) == sorted([*old, "key.activated"])


def test_every_action_written_by_the_code_has_a_label_or_is_internal():
    """Labels live in one map (audit/actions.py); the code's action names all follow its pattern."""
    import re

    from fiscobridge.audit.actions import ACTION_LABELS

    pattern = re.compile(r"^[a-z_]+\.[a-z_]+$")
    assert all(pattern.match(action) for action in ACTION_LABELS)
    written = set()
    for path in (ROOT / "fiscobridge").rglob("*.py"):
        if "migrations" not in path.parts:
            written |= set(re.findall(r'action="([a-z_]+\.[a-z_.]+)"', path.read_text()))
    assert written, "no action found: the pattern of this test is out of date"
    assert all(pattern.match(action) for action in written), sorted(a for a in written if not pattern.match(a))
