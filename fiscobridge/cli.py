"""The `fiscobridge` command: serve, the release step (migrate), worker, demo data, tenants, tokens, key batches,
reminders, lease signing keys and lease checks, Django management."""

import argparse
import csv
import os
import sys
from datetime import date, datetime

from fiscobridge.core.localtime import DEFAULT_TIME_ZONE

CLI_MAX_KEYS = 1_000_000


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fiscobridge.settings")
    import django

    django.setup()


class CommandError(Exception):
    """A clear message for the user; exit status 1."""


def _collect_static() -> None:
    # Production stores static files under hashed names (settings.STORAGES): pages cannot render
    # before the manifest exists, so every start-up and every release writes it.
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)


def _cmd_migrate(args) -> int:
    """The release step: run once per release, before the new code serves (deploy/README.md)."""
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0 if args.quiet else 1)
    _collect_static()
    print(f"Release step done: database migrated, static files collected in {settings.STATIC_ROOT}", flush=True)
    return 0


def gunicorn_argv(*, bind: str, workers: int | str, threads: int = 1) -> list[str]:
    """gunicorn with our configuration (timeouts, access-log format, JSON error pages, worker
    class: fiscobridge/gunicorn_conf.py). `serve` runs it; the tests start real servers with it."""
    argv = [sys.executable, "-m", "gunicorn", "fiscobridge.wsgi:application"]
    argv += ["--config", "python:fiscobridge.gunicorn_conf", "--bind", bind, "--workers", str(workers)]
    return argv + (["--threads", str(threads)] if threads > 1 else [])


def _cmd_serve(args) -> int:
    from django.core.management import call_command

    call_command("check")  # production guard rails (core/checks.py): one clear line each, then exit
    # Several replicas starting at once must not race on migrations: in production they start
    # with --no-migrate after one `fiscobridge migrate`. The default keeps `make run` one command.
    if args.migrate:
        call_command("migrate", interactive=False, verbosity=0)
    _collect_static()
    workers = str(args.workers or int(os.environ.get("WEB_CONCURRENCY", "0") or 0) or (os.cpu_count() or 1) * 2 + 1)
    threads = args.threads or int(os.environ.get("WEB_THREADS", "0") or 0) or 1
    os.environ["WEB_THREADS"] = str(threads)  # gunicorn_conf picks the threaded worker class from it
    argv = gunicorn_argv(bind=f"{args.host}:{args.port}", workers=workers, threads=threads)
    print(
        f"Serving FiscoBridge Licensing on http://{args.host}:{args.port} with {workers} gunicorn workers", flush=True
    )
    os.execv(sys.executable, argv)
    return 0  # not reached


def _cmd_demo(args) -> int:
    from fiscobridge.demo import load_demo

    report = load_demo(time_zone=args.time_zone)
    print("FiscoBridge demo data is ready.\n")
    print("Logins (e-mail / password):")
    for role, email, password in report.logins:
        print(f"  {role:<9} {email:<34} {password}")
    print(
        "\nTwo-factor sign-in: staff set up an authenticator app at their first sign-in (required);\n"
        "the demo partner and customer may turn it on under Account → Two-factor sign-in."
    )
    print("\nFresh activation keys (shown once; issued by the demo partner):")
    for code, package in report.fresh_keys:
        print(f"  {code}   {package}")
    print(f"\nCustomer API token (shown once):\n  {report.customer_token}")
    return 0


def _cmd_create_partner(args) -> int:
    from fiscobridge.accounts.services import create_partner

    user = create_partner(name=args.name, email=args.email, password=args.password, time_zone=args.time_zone)
    print(
        f"Created partner {user.partner.name!r} (id {user.partner.pk}, time zone {user.partner.time_zone})"
        f" with user {user.email}"
    )
    print("Its users set up two-factor sign-in (an authenticator app) at their first sign-in.")
    return 0


def _cmd_create_account(args) -> int:
    from fiscobridge.accounts.services import create_account

    user = create_account(name=args.name, email=args.email, password=args.password, time_zone=args.time_zone)
    print(
        f"Created customer account {user.account.name!r} (id {user.account.pk}, time zone {user.account.time_zone})"
        f" with user {user.email}"
    )
    return 0


def _user(email: str):
    from fiscobridge.accounts.models import User

    user = User.objects.filter(email=email.strip().lower(), is_active=True).select_related("partner").first()
    if user is None:
        raise CommandError(f"no active user with e-mail {email}")
    return user


def _cmd_create_token(args) -> int:
    from fiscobridge.accounts.services import create_api_token

    user = _user(args.email)
    issued = create_api_token(user=user, name=args.name, scopes=args.scope or ["all"])
    print(f"API token for {user.email} with scopes: {issued.token.scopes}")
    print("Shown once; send it as 'Authorization: Bearer <token>':")
    print(issued.plain)
    return 0


def _redeem_by(text: str | None) -> date | datetime | None:
    if not text:
        return None
    from fiscobridge.core.clock import parse_deadline

    try:
        return parse_deadline(text)
    except ValueError:
        raise CommandError(
            "--redeem-by must be a date like 2027-12-31 (usable through that day in the partner's time zone) "
            "or a date-time like 2027-12-31T18:00:00Z"
        ) from None


def _cmd_issue_keys(args) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from fiscobridge.core.localtime import iso_local
    from fiscobridge.keys.issuance import issue_keys

    user = _user(args.partner_email)
    if user.partner is None:
        raise CommandError(f"{user.email} is not a partner user")
    out = None
    if args.out:
        try:
            out = os.fdopen(os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", newline="")
        except FileExistsError:
            raise CommandError(f"{args.out} already exists; codes are written once, to a new file") from None
        except OSError as error:
            raise CommandError(f"cannot create {args.out}: {error.strerror}") from None
    progress = Progress(
        TextColumn("Issuing keys"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=None,
        transient=False,
        disable=args.quiet,
    )
    progress.console.file = sys.stderr
    try:
        with progress:
            task = progress.add_task("issue", total=args.count)
            issued = issue_keys(
                partner=user.partner,
                actor=user,
                product=args.product,
                tier=args.tier or "",
                seats=args.seats,
                months=args.months,
                quantity=args.count,
                reference=args.reference or "",
                redeem_by=_redeem_by(args.redeem_by),
                max_quantity=CLI_MAX_KEYS,
                on_progress=lambda n: progress.advance(task, n),
            )
    except BaseException:
        if out is not None:
            out.close()
            os.unlink(args.out)
        raise
    batch = issued.batch
    stream = out or sys.stdout
    writer = csv.writer(stream)
    writer.writerow(["code", "id", "product", "tier", "seats", "months", "reference", "batch", "redeem_by"])
    for key in issued.keys:
        writer.writerow(
            [
                key.code,
                key.id,
                batch.product,
                batch.tier,
                batch.seats,
                batch.months,
                batch.reference,
                batch.pk,
                iso_local(batch.redeem_by, user.partner.time_zone),
            ]
        )
    if out is not None:
        out.close()
        print(f"Issued {len(issued.keys)} keys in batch {batch.pk}; codes written once to {args.out}", file=sys.stderr)
    return 0


def _cmd_rotate_encryption_key(args) -> int:
    from django.conf import settings

    from fiscobridge.leases.signing_keys import reencrypt_signing_keys
    from fiscobridge.pos.services import reencrypt_certificates

    if not settings.ENCRYPTION_OLD_SECRETS:
        print(
            "note: FISCOBRIDGE_ENCRYPTION_OLD_KEYS is empty: tokens are re-encrypted under the same secret",
            file=sys.stderr,
        )
    count = reencrypt_certificates()
    print(f"Re-encrypted {count} certificate(s) (file and password) under FISCOBRIDGE_ENCRYPTION_KEY.")
    print(f"Re-encrypted {reencrypt_signing_keys()} lease signing key(s) under FISCOBRIDGE_ENCRYPTION_KEY.")
    print("The old secret(s) can now be removed from FISCOBRIDGE_ENCRYPTION_OLD_KEYS.")
    return 0


def _cmd_rotate_signing_key(args) -> int:
    from fiscobridge.leases.signing_keys import rotate_signing_key

    rotation = rotate_signing_key()
    print(f"New lease signing key: {rotation.new.kid} (signs every new lease within LEASE_KEY_CACHE_SECONDS).")
    if rotation.retired is not None:
        until = rotation.retired.published_until.isoformat()
        print(f"Retired key {rotation.retired.kid}: stays in /.well-known/jwks.json until {until}.")
    return 0


def _load_jwks(source: str | None) -> dict:
    """The JWKS from a URL, a file, or (without --jwks) this installation's published keys."""
    import json
    import urllib.request

    if source is None:
        from fiscobridge.leases.signing_keys import published_jwks

        return published_jwks()
    try:
        if source.startswith(("https://", "http://")):
            with urllib.request.urlopen(source, timeout=10) as response:
                return json.load(response)
        with open(source, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read the JWKS from {source}: {error}") from None


def _cmd_verify_lease(args) -> int:
    import json
    from datetime import UTC

    from fiscobridge.leases.verify import verify_lease

    verdict = verify_lease(args.token.strip(), _load_jwks(args.jwks), uid=args.uid, fingerprint=args.fingerprint)
    if verdict.header:
        print("header: " + json.dumps(verdict.header, sort_keys=True))
    if verdict.claims:
        print("claims" + ("" if verdict.valid else " (NOT verified)") + ":")
        for name, value in verdict.claims.items():
            moment = ""
            if name in {"iat", "nbf", "exp"} and isinstance(value, int):
                moment = f"  ({datetime.fromtimestamp(value, UTC).isoformat()})"
            print(f"  {name}: {json.dumps(value)}{moment}")
    if not verdict.valid:
        print(f"INVALID: {verdict.problem}")
        return 1
    if not verdict.may_sign:
        print(f"VALID, but the lease says this certificate may not sign: {verdict.claims.get('reason')}")
        return 2
    print("VALID: this certificate may sign until exp.")
    return 0


def _cmd_prune(args) -> int:
    from fiscobridge.prune import prune

    report = prune()
    print("Deleted: " + ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in report.items()) + ".")
    return 0


def _cmd_send_reminders(args) -> int:
    from fiscobridge.notifications.reminders import send_reminders
    from fiscobridge.notifications.sending import transport_description
    from fiscobridge.pos.expiry_reminders import queue_due_certificate_reminders

    certificates = queue_due_certificate_reminders()
    report = send_reminders()
    sending = report.sending
    print(f"E-mail transport: {transport_description()}")
    print(
        f"Reminders queued: {report.queued + certificates}. "
        f"E-mails sent: {sending.sent}; failed this run: {sending.failed}; "
        f"still pending: {report.pending}; given up (staff may requeue them in the admin): {report.given_up}."
    )
    if sending.failed or sending.errors:
        print("error: some e-mail could not be sent; it stays pending for the next run (see the log)", file=sys.stderr)
        return 1
    return 0


def _cmd_worker(args) -> int:
    from django.conf import settings

    from fiscobridge.jobs import PERIODIC_JOBS
    from fiscobridge.tasks.worker import run_worker

    run_worker(
        jobs=PERIODIC_JOBS,
        interval=args.interval,
        tick_seconds=settings.TASKS_SCHEDULE_TICK_SECONDS,
        batch=args.batch,
        verbosity=0 if args.quiet else 1,
    )
    return 0


def _whole_number(text: str) -> int:
    """Any whole number: the service checks the range and says it in its own words."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _positive_int(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fiscobridge", description="FiscoBridge Licensing")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="apply migrations and serve the portal with gunicorn")
    serve.add_argument(
        "--no-migrate",
        dest="migrate",
        action="store_false",
        help="do not apply migrations (production: `fiscobridge migrate` ran once for the release)",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_positive_int, default=8000)
    serve.add_argument("--workers", type=_positive_int, default=None, help="gunicorn workers (default: 2 × cores + 1)")
    serve.add_argument(
        "--threads", type=_positive_int, default=None, help="threads per worker (default 1: sync workers)"
    )
    serve.set_defaults(run=_cmd_serve)

    migrate = sub.add_parser("migrate", help="the release step: apply migrations and collect static files, then exit")
    migrate.add_argument("--quiet", action="store_true", help="do not list the migrations applied")
    migrate.set_defaults(run=_cmd_migrate)

    demo = sub.add_parser("demo", help="create demo partner, customer, staff and keys; print the logins")
    demo.add_argument(
        "--time-zone",
        default=DEFAULT_TIME_ZONE,
        help=f"IANA zone of the demo partner and customer when first made (default {DEFAULT_TIME_ZONE})",
    )
    demo.set_defaults(run=_cmd_demo)

    for name, run, what in (
        ("create-partner", _cmd_create_partner, "a partner (reseller)"),
        ("create-account", _cmd_create_account, "a customer account"),
    ):
        cmd = sub.add_parser(name, help=f"create {what} with its first user")
        cmd.add_argument("--name", required=True)
        cmd.add_argument("--email", required=True)
        cmd.add_argument("--password", required=True)
        cmd.add_argument(
            "--time-zone",
            default=DEFAULT_TIME_ZONE,
            help=f"IANA zone its pages, e-mails and exports are shown in (default {DEFAULT_TIME_ZONE})",
        )
        cmd.set_defaults(run=run)

    token = sub.add_parser("create-token", help="create an API token; prints it alone on the last line")
    token.add_argument("--email", required=True)
    token.add_argument("--name", default="cli")
    token.add_argument(
        "--scope",
        action="append",
        metavar="S",
        help="what the token may do (repeat for several; default: all). Scopes: docs/api-tokens.md",
    )
    token.set_defaults(run=_cmd_create_token)

    issue = sub.add_parser("issue-keys", help="issue a batch of keys; codes go once to the CSV or stdout")
    issue.add_argument("--partner-email", required=True)
    issue.add_argument("--product", required=True, choices=["pos", "int"])
    issue.add_argument("--tier", choices=["starter", "growth", "scale"])
    issue.add_argument("--seats", required=True, type=_whole_number)
    issue.add_argument("--months", required=True, type=_whole_number)
    issue.add_argument("--count", required=True, type=_whole_number)
    issue.add_argument("--reference")
    issue.add_argument(
        "--redeem-by",
        help="keys not redeemed by then become unusable: an ISO date (through that day in the partner's "
        "time zone) or date-time (UTC if no zone)",
    )
    issue.add_argument("--out", metavar="FILE.csv", help="write the codes here (a new file, mode 600)")
    issue.add_argument("--quiet", action="store_true", help="no progress bar")
    issue.set_defaults(run=_cmd_issue_keys)

    reminders = sub.add_parser(
        "send-reminders",
        help="queue the 30/7/1-day subscription and certificate expiry reminders that are due and send all "
        "pending e-mail (run from cron)",
    )
    reminders.set_defaults(run=_cmd_send_reminders)

    prune = sub.add_parser(
        "prune",
        help="delete rows past their retention (sessions, attempts, logs, sent e-mail; the worker runs it daily)",
    )
    prune.set_defaults(run=_cmd_prune)

    rotate = sub.add_parser(
        "rotate-encryption-key",
        help="re-encrypt every stored certificate file and password under FISCOBRIDGE_ENCRYPTION_KEY "
        "(the old secret in FISCOBRIDGE_ENCRYPTION_OLD_KEYS)",
    )
    rotate.set_defaults(run=_cmd_rotate_encryption_key)

    rotate_signing = sub.add_parser(
        "rotate-signing-key",
        help="sign new offline leases with a new Ed25519 key; the old one stays published until its leases expired",
    )
    rotate_signing.set_defaults(run=_cmd_rotate_signing_key)

    verify = sub.add_parser(
        "verify-lease",
        help="check an offline lease as a POS device does (signature, audience, times ±5 min); "
        "exit 0 valid and may sign, 2 valid but may not sign, 1 invalid",
    )
    verify.add_argument("token", help="the lease (compact JWT)")
    verify.add_argument(
        "--jwks", metavar="URL-or-FILE", help="the published keys (default: this installation's, from its database)"
    )
    verify.add_argument("--uid", help="also require this certificate UID (`sub`)")
    verify.add_argument("--fingerprint", help="also require this SHA-256 fingerprint (`fpr`, hex)")
    verify.set_defaults(run=_cmd_verify_lease)

    worker = sub.add_parser("worker", help="run queued tasks (e-mail, reminders, Stripe re-sync) and the periodic jobs")
    worker.add_argument("--interval", type=float, default=1.0, help="seconds between looks when the queue is empty")
    worker.add_argument(
        "--batch", action="store_true", help="run the due periodic jobs and every ready task, then exit"
    )
    worker.add_argument("--quiet", action="store_true", help="log warnings and errors only")
    worker.set_defaults(run=_cmd_worker)

    manage = sub.add_parser("manage", help="any Django management command", add_help=False)
    manage.add_argument("rest", nargs=argparse.REMAINDER)
    manage.set_defaults(run=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_django()
    if args.command == "manage":
        from django.core.management import execute_from_command_line

        execute_from_command_line(["fiscobridge manage", *args.rest])
        return 0

    from fiscobridge.core.errors import DomainError

    try:
        return args.run(args)
    except (DomainError, CommandError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
