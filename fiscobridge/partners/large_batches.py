"""Batches too large to issue in a request (Partner Portal): queued, issued by the worker with
its progress on the page, and their codes downloaded once.

The codes must reach the partner once and never be stored in plain (SPEC 2.3). The worker issues
the batch through `issue_keys` (the one issuance service, as the CLI and the API use it), writes
the codes as the same CSV as the CLI and the page's download, and keeps that file only encrypted
(core/encryption, its own purpose) on the job, in the transaction that issues the keys: a batch
exists exactly when its encrypted codes do. `take_codes` decrypts them for the one download and
deletes them in the same transaction; a second download finds nothing (410). Codes not fetched
within CODES_KEPT_HOURS are deleted by `forget_unclaimed_codes` (a periodic job): the keys stay
issued, and the partner can revoke them (docs/decisions.md).
"""

import csv
import io
from datetime import timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

from fiscobridge.core import clock
from fiscobridge.core.encryption import decrypt, encrypt
from fiscobridge.core.errors import DomainError, InvalidInput, NotFound
from fiscobridge.core.localtime import iso_local
from fiscobridge.keys.issuance import check_package, issue_keys
from fiscobridge.partners.models import IssueJob
from fiscobridge.tasks.queue import enqueue_with_transaction

PURPOSE = "issued-codes"
CODES_KEPT_HOURS = 24
CSV_COLUMNS = ["code", "id", "product", "tier", "seats", "months", "reference", "batch", "redeem_by"]


class CodesGone(DomainError):
    code = "codes_already_downloaded"
    http_status = 410
    message = "These codes were already downloaded, or were not fetched in time. FiscoBridge keeps no copy."


def is_large(quantity: int) -> bool:
    return quantity > settings.KEY_ISSUE_DIRECT_MAX


def start_large_issue(
    *, partner, actor, product, tier="", seats, months, quantity, reference="", redeem_by=None, ip=None
) -> IssueJob:
    """Queue a batch for the worker; returns its job. The package is checked now, so a mistake is
    answered on the form rather than by a failed job."""
    tier = check_package(product=product, tier=tier, seats=seats, months=months)
    if not isinstance(quantity, int) or not 1 <= quantity <= settings.KEY_ISSUE_MAX_PER_REQUEST:
        raise InvalidInput.for_field(
            "quantity", f"Quantity must be a whole number from 1 to {settings.KEY_ISSUE_MAX_PER_REQUEST}"
        )
    from fiscobridge.partners.tasks import issue_large_batch  # the task module imports this one

    with transaction.atomic():
        job = IssueJob.objects.create(
            partner=partner,
            created_by=actor,
            product=product,
            tier=tier,
            seats=seats,
            months=months,
            quantity=quantity,
            reference=reference,
            redeem_by=redeem_by,
            ip=ip,
        )
        enqueue_with_transaction(issue_large_batch, job.pk)  # exists exactly when the job does
    return job


def codes_csv(issued, time_zone: str) -> str:
    """The codes of a batch as CSV, the columns of `fiscobridge issue-keys` and the page's download."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    b = issued.batch
    redeem_by = iso_local(b.redeem_by, time_zone)
    for key in issued.keys:
        writer.writerow([key.code, key.id, b.product, b.tier, b.seats, b.months, b.reference, b.pk, redeem_by])
    return out.getvalue()


class _Progress:
    """Writes the number of keys issued so far on the job, through a connection of its own, so the
    page sees it while the batch's transaction is still open. SQLite has one writer at a time (the
    batch holds it): there the page shows the job as issuing until it is done."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.done = 0
        self.side = None if connection.vendor == "sqlite" else connections.create_connection(DEFAULT_DB_ALIAS)

    def __call__(self, count: int) -> None:
        self.done += count
        if self.side is not None:
            with self.side.cursor() as cursor:  # autocommit: visible at once
                cursor.execute(
                    f"UPDATE {IssueJob._meta.db_table} SET done = %s WHERE id = %s",
                    [self.done, self.job_id],
                )

    def close(self) -> None:
        if self.side is not None:
            self.side.close()


def run_issue_job(job_id: int) -> IssueJob:
    """The worker's part: issue the job's batch and keep its codes encrypted, all in one transaction."""
    # Claim: a job is issued once. A worker that died mid-batch rolled its transaction back, so a
    # job still "issuing" without a batch is run again (tasks/housekeeping recovers the task).
    claimed = IssueJob.objects.filter(
        pk=job_id, status__in=[IssueJob.Status.QUEUED, IssueJob.Status.ISSUING], batch__isnull=True
    ).update(status=IssueJob.Status.ISSUING, done=0)
    job = IssueJob.objects.select_related("partner", "created_by").get(pk=job_id)
    if not claimed:
        return job
    progress = _Progress(job_id)
    try:
        with transaction.atomic():
            issued = issue_keys(
                partner=job.partner,
                actor=job.created_by,
                product=job.product,
                tier=job.tier,
                seats=job.seats,
                months=job.months,
                quantity=job.quantity,
                reference=job.reference,
                redeem_by=job.redeem_by,
                on_progress=progress,
                ip=job.ip,
            )
            token = encrypt(PURPOSE, codes_csv(issued, job.partner.time_zone).encode("utf-8"))
            IssueJob.objects.filter(pk=job_id).update(
                status=IssueJob.Status.READY,
                done=job.quantity,
                batch=issued.batch,
                codes_encrypted=token,
                finished_at=clock.now(),
            )
    except InvalidInput as error:  # e.g. a redeem-by day that has passed while the job waited
        IssueJob.objects.filter(pk=job_id).update(
            status=IssueJob.Status.FAILED, error=error.message[:300], finished_at=clock.now()
        )
    finally:
        progress.close()
    job.refresh_from_db()
    return job


def get_job_for_partner(partner, job_id: int) -> IssueJob:
    """The job of this partner, or NotFound (another partner's job is a 404, SPEC 1)."""
    job = IssueJob.objects.filter(partner=partner, pk=job_id).select_related("batch").first()
    if job is None:
        raise NotFound()
    return job


def take_codes(*, partner, job_id: int, actor) -> tuple[IssueJob, str]:
    """The codes' CSV, once: decrypted and deleted in one transaction (row lock on PostgreSQL,
    the write lock on SQLite), so of two downloads at once exactly one gets them."""
    with transaction.atomic():
        job = IssueJob.objects.select_for_update().filter(partner=partner, pk=job_id).first()
        if job is None:
            raise NotFound()
        if job.status != IssueJob.Status.READY or job.codes_encrypted is None:
            raise CodesGone()
        text = decrypt(PURPOSE, bytes(job.codes_encrypted)).decode("utf-8")
        # Conditional: of two downloads that both read the row (SQLite takes no row lock), the
        # first to write wins; the other changes nothing and is told the codes are gone.
        claimed = IssueJob.objects.filter(
            pk=job.pk, status=IssueJob.Status.READY, codes_encrypted__isnull=False
        ).update(status=IssueJob.Status.DOWNLOADED, downloaded_at=clock.now(), codes_encrypted=None)
        if not claimed:
            raise CodesGone()
    job.refresh_from_db()
    return job, text


def forget_unclaimed_codes() -> int:
    """Delete codes nobody downloaded within CODES_KEPT_HOURS (the keys stay issued)."""
    cutoff = clock.now() - timedelta(hours=CODES_KEPT_HOURS)
    return IssueJob.objects.filter(status=IssueJob.Status.READY, finished_at__lt=cutoff).update(
        status=IssueJob.Status.FAILED, codes_encrypted=None, error="The codes were not downloaded in time."
    )
