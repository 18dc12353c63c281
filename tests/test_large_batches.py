"""Large batches in the Partner Portal (issue 12, item 6): more than KEY_ISSUE_DIRECT_MAX keys are
issued by the task queue with a progress bar; the codes wait encrypted for one download, then are
gone. Up to KEY_ISSUE_DIRECT_MAX, the page issues and shows the codes at once, as before."""

import csv
import io
import re

import pytest
from django.test import Client

from fiscobridge.keys.codes import code_digest
from fiscobridge.keys.models import ActivationKey, KeyBatch
from fiscobridge.partners.large_batches import PURPOSE, forget_unclaimed_codes
from fiscobridge.partners.models import IssueJob
from tests.factories import browser_for, code_variants, dump_database, run_tasks
from tests.test_partner_portal_pages import codes_in, issue_form

LARGE = 1001  # one more than KEY_ISSUE_DIRECT_MAX's default


def _job_url(job) -> str:
    return f"/partner/issue/jobs/{job.pk}/"


def _rows(body: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_a_large_batch_is_queued_issued_by_the_worker_and_downloaded_once(reseller, settings):
    assert settings.KEY_ISSUE_DIRECT_MAX == 1000
    client = browser_for(reseller)
    answer = issue_form(client, quantity=LARGE, seats=3, reference="Order 77", htmx=True)
    assert answer.status_code == 200
    html = answer.content.decode()
    job = IssueJob.objects.get()
    assert "Waiting for a worker" in html and "<progress" in html
    assert f'hx-get="{_job_url(job)}"' in html and 'hx-trigger="every 1s"' in html  # the page polls
    assert not ActivationKey.objects.exists()  # nothing issued in the request

    run_tasks()  # what the worker does next
    job.refresh_from_db()
    assert job.status == "ready" and job.done == LARGE and job.batch is not None
    progress = client.get(_job_url(job), HTTP_HX_REQUEST="true").content.decode()
    assert f"issued in batch #{job.batch_id}" in progress and "Download CSV" in progress
    assert "<html" not in progress  # an htmx fragment; without htmx the whole page:
    assert "<html" in client.get(_job_url(job)).content.decode()

    # The codes are stored only encrypted: nowhere in the database in plain, before the download…
    first = client.post(f"{_job_url(job)}codes.csv")
    assert first.status_code == 200 and first["Content-Type"].startswith("text/csv")
    assert f'filename="fiscobridge-batch-{job.batch_id}-codes.csv"' in first["Content-Disposition"]
    assert not first.content.startswith(b"\xef\xbb\xbf")
    rows = _rows(first.content)
    codes = [r["code"] for r in rows]
    assert len(codes) == len(set(codes)) == LARGE
    assert all(r["reference"] == "Order 77" and r["seats"] == "3" and r["batch"] == str(job.batch_id) for r in rows)
    # …and they are the batch's keys: the same HMACs, the same ids.
    stored = dict(ActivationKey.objects.filter(batch=job.batch).values_list("code_hmac", "pk"))
    assert {code_digest(c): int(r["id"]) for c, r in zip(codes, rows, strict=True)} == stored

    # Once: the second download is refused with a clear message, and nothing of them remains.
    second = client.post(f"{_job_url(job)}codes.csv")
    assert second.status_code == 410
    assert "already downloaded" in second.content.decode()
    job.refresh_from_db()
    assert job.status == "downloaded" and job.codes_encrypted is None and job.downloaded_at
    assert "were downloaded on" in client.get(_job_url(job), HTTP_HX_REQUEST="true").content.decode()
    database = dump_database()
    for code in codes[:50] + codes[-50:]:
        for variant in code_variants(code):
            assert variant not in database


def test_the_codes_wait_encrypted_until_the_download(reseller):
    client = browser_for(reseller)
    issue_form(client, quantity=LARGE)
    run_tasks()
    job = IssueJob.objects.get()
    database = dump_database()
    token = bytes(job.codes_encrypted)
    assert token and b"POS-" not in token
    from fiscobridge.core.encryption import decrypt

    codes = [r["code"] for r in _rows(decrypt(PURPOSE, token))]
    assert len(codes) == LARGE
    for code in codes[:100]:
        assert code not in database and code[4:] not in database
    # The task's stored result names the batch, never a code.
    from django_tasks_db.models import DBTaskResult

    result = DBTaskResult.objects.get(task_path__endswith="issue_large_batch")
    assert result.return_value == {"job": job.pk, "status": "ready", "batch": job.batch_id}


def test_csv_for_excel_starts_with_a_byte_order_mark(reseller):
    client = browser_for(reseller)
    issue_form(client, quantity=LARGE)
    run_tasks()
    job = IssueJob.objects.get()
    answer = client.post(f"{_job_url(job)}codes.csv", {"excel": "1"})
    assert answer.status_code == 200 and answer.content.startswith(b"\xef\xbb\xbf")
    assert '-codes-excel.csv"' in answer["Content-Disposition"]
    assert len(_rows(answer.content)) == LARGE
    assert client.post(f"{_job_url(job)}codes.csv").status_code == 410  # one download, whichever


def test_another_partner_or_nobody_cannot_see_or_take_the_codes(reseller, other_reseller, customer):
    issue_form(browser_for(reseller), quantity=LARGE)
    run_tasks()
    job = IssueJob.objects.get()
    missing = f"/partner/issue/jobs/{2**40}/"
    other = browser_for(other_reseller)
    assert other.get(_job_url(job)).status_code == 404
    theirs, nobody = other.post(f"{_job_url(job)}codes.csv"), other.post(f"{missing}codes.csv")
    assert theirs.status_code == nobody.status_code == 404
    anonymous = Client()
    for response in (anonymous.get(_job_url(job)), anonymous.post(f"{_job_url(job)}codes.csv")):
        assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    assert browser_for(customer).post(f"{_job_url(job)}codes.csv").status_code == 403
    job.refresh_from_db()
    assert job.status == "ready" and job.codes_encrypted  # still there for its owner
    assert browser_for(reseller).post(f"{_job_url(job)}codes.csv").status_code == 200


def test_up_to_the_direct_maximum_the_page_issues_at_once(reseller, settings):
    settings.KEY_ISSUE_DIRECT_MAX = 5  # the boundary, at a size that renders quickly
    client = browser_for(reseller)
    at_max = issue_form(client, quantity=5, htmx=True).content.decode()
    assert len(codes_in(at_max)) == 5 and not IssueJob.objects.exists()
    over = issue_form(client, quantity=6, htmx=True).content.decode()
    assert codes_in(over) == [] and "Waiting for a worker" in over
    assert KeyBatch.objects.count() == 1  # the large one waits for the worker


def test_a_job_whose_redeem_by_passed_while_waiting_fails_and_says_why(reseller, time_machine):
    time_machine.move_to("2026-11-30 10:00:00+00:00", tick=False)
    issue_form(browser_for(reseller), quantity=LARGE, redeem_by="2026-12-01")
    time_machine.move_to("2026-12-05 10:00:00+00:00", tick=False)
    run_tasks()
    job = IssueJob.objects.get()
    assert job.status == "failed" and "Redeem-by must be in the future" in job.error
    assert not ActivationKey.objects.exists()
    html = browser_for(reseller).get(_job_url(job), HTTP_HX_REQUEST="true").content.decode()
    assert "Redeem-by must be in the future" in html and "every 1s" not in html


def test_codes_nobody_downloads_are_forgotten_after_a_day(reseller, time_machine):
    time_machine.move_to("2026-11-30 10:00:00+00:00", tick=False)
    issue_form(browser_for(reseller), quantity=LARGE)
    run_tasks()
    time_machine.move_to("2026-12-01 09:00:00+00:00", tick=False)
    assert forget_unclaimed_codes() == 0
    time_machine.move_to("2026-12-01 10:30:00+00:00", tick=False)
    assert forget_unclaimed_codes() == 1
    job = IssueJob.objects.get()
    assert job.codes_encrypted is None and job.status == "failed"
    assert ActivationKey.objects.filter(batch=job.batch).count() == LARGE  # the keys stay issued
    gone = browser_for(reseller).post(f"{_job_url(job)}codes.csv")
    assert gone.status_code == 410 and re.search(r"not fetched in time", gone.content.decode())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_progress_is_visible_while_the_batch_is_issued(reseller, monkeypatch):
    # The batch is one transaction; its progress goes through a connection of its own, so another
    # request (the page's poll) sees it grow before the commit. Chunks of 200: several steps.
    from django.db import DEFAULT_DB_ALIAS, connections

    from fiscobridge.keys import issuance
    from fiscobridge.partners import large_batches

    monkeypatch.setattr(issuance, "CHUNK", 200)
    seen = []
    watcher = connections.create_connection(DEFAULT_DB_ALIAS)  # as the polling request would read
    report = large_batches._Progress.__call__

    def report_and_look(self, count):
        report(self, count)
        with watcher.cursor() as cursor:
            cursor.execute("SELECT done, (SELECT COUNT(*) FROM keys_activationkey) FROM partners_issuejob")
            seen.append(cursor.fetchone())

    monkeypatch.setattr(large_batches._Progress, "__call__", report_and_look)
    issue_form(browser_for(reseller), quantity=LARGE)
    run_tasks()
    watcher.close()
    # Each step visible at once, while no key of the batch was visible yet (not committed).
    assert seen == [(n, 0) for n in (200, 400, 600, 800, 1000, 1001)]
    assert IssueJob.objects.get().status == "ready"
