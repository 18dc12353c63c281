"""Backup, restore, rotate (issue 11.8).

The restore drill of docs/operations.md, performed on PostgreSQL: dump the database with
pg_dump, restore it into a new database with pg_restore, point a fresh server at it with the
same three secrets, and check that an available key still validates, an API token still works
and an uploaded certificate still decrypts. Then the encryption-key rotation: MultiFernet over
the new and old secrets, and `fiscobridge rotate-encryption-key` re-encrypting every stored one."""

import os
import subprocess
import sys
import uuid

import httpx
import pytest
from django.db import connection

from fiscobridge.cli import main as cli_main
from fiscobridge.core.encryption import decrypt
from fiscobridge.core.errors import DecryptionError
from fiscobridge.pos.models import Certificate
from fiscobridge.pos.services import FILE_PURPOSE, PASSWORD_PURPOSE
from tests.app_server import ROOT, AppServer
from tests.factories import PFX_PASSWORD, grant, new_pfx, upload_pfx

VALIDATE = "/api/v1/keys/validate"


def _pg(*argv: str) -> None:
    params = connection.settings_dict
    command = [argv[0], "-h", params["HOST"], "-p", str(params["PORT"]), "-U", params["USER"], *argv[1:]]
    env = {**os.environ, "PGPASSWORD": params.get("PASSWORD") or ""}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_restore_drill(customer, issue, tmp_path):
    grant(customer, issue, seats=1)
    pfx = new_pfx(org="Restored SA")
    uid = upload_pfx(customer, pfx).json()["uid"]
    [available] = issue()
    source = connection.settings_dict["NAME"]
    restored = f"{source}_restored_{uuid.uuid4().hex[:6]}"
    dump = tmp_path / "fiscobridge.dump"

    _pg("pg_dump", "--format=custom", "--no-owner", f"--file={dump}", source)
    _pg("createdb", restored)
    try:
        _pg("pg_restore", "--no-owner", f"--dbname={restored}", str(dump))
        params = connection.settings_dict
        url = f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{restored}"
        with AppServer(workers=1, database_url=url) as server:
            headers = {"Authorization": f"Bearer {customer.token}"}
            checked = httpx.post(
                f"{server.url}{VALIDATE}", json={"key": available, "product": "pos"}, headers=headers, timeout=30
            )
            listed = httpx.get(f"{server.url}/api/v1/pos/certificates", headers=headers, timeout=30)
        assert checked.status_code == 200, checked.text  # the key's HMAC and the token's digest still match
        assert [c["uid"] for c in listed.json()["items"]] == [uid]
        probe = (
            "from fiscobridge.core.encryption import decrypt; from fiscobridge.pos.models import Certificate; "
            "c = Certificate.objects.get(); "
            "print(len(decrypt('certificate-file', bytes(c.file_encrypted))), "
            "decrypt('certificate-password', bytes(c.password_encrypted)).decode())"
        )
        env = {**os.environ, "DATABASE_URL": url}
        shell = [sys.executable, "-m", "fiscobridge.cli", "manage", "shell", "--no-imports", "-c", probe]
        result = subprocess.run(shell, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.split() == [str(len(pfx)), PFX_PASSWORD]
    finally:
        _pg("dropdb", "--if-exists", "--force", restored)


def test_rotating_the_encryption_key(customer, issue, settings, capsys):
    grant(customer, issue, seats=2)
    pfx = new_pfx()
    upload_pfx(customer, pfx)
    old_secret = settings.ENCRYPTION_SECRET
    before = Certificate.objects.values_list("file_encrypted", flat=True).get()

    # The new secret alone opens nothing stored yet; with the old one beside it, everything opens.
    settings.ENCRYPTION_SECRET, settings.ENCRYPTION_OLD_SECRETS = "a-brand-new-secret-" * 3, []
    with pytest.raises(DecryptionError):
        decrypt(FILE_PURPOSE, bytes(before))
    settings.ENCRYPTION_OLD_SECRETS = [old_secret]
    assert decrypt(FILE_PURPOSE, bytes(before)) == pfx
    upload_pfx(customer, new_pfx())  # new uploads are encrypted under the new secret at once

    assert cli_main(["rotate-encryption-key"]) == 0
    assert "Re-encrypted 2 certificate(s)" in capsys.readouterr().out

    settings.ENCRYPTION_OLD_SECRETS = []  # the old secret dropped: everything still opens
    rows = list(Certificate.objects.order_by("pk").values_list("file_encrypted", "password_encrypted"))
    assert bytes(rows[0][0]) != bytes(before)
    assert decrypt(FILE_PURPOSE, bytes(rows[0][0])) == pfx
    assert all(decrypt(PASSWORD_PURPOSE, bytes(password)).decode() == PFX_PASSWORD for _, password in rows)
    settings.ENCRYPTION_SECRET = old_secret  # and the old secret alone opens nothing any more
    with pytest.raises(DecryptionError):
        decrypt(FILE_PURPOSE, bytes(rows[0][0]))
