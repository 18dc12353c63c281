"""One env-driven settings file.

FISCOBRIDGE_ENV=development (the default, used by `make run` and the tests) creates its
secrets once in the data directory; FISCOBRIDGE_ENV=production refuses to start without
them in the environment and turns on the secure-cookie and HTTPS defaults.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ

from fiscobridge.core.secrets import load_or_create_secret

BASE_DIR = Path(__file__).resolve().parent
env = environ.Env()

ENVIRONMENT = env.str("FISCOBRIDGE_ENV", default="development")
# Settings whose defaults are development values: production must set them (core/checks.py).
EXPLICIT_SETTINGS = {
    name
    for name in ("PUBLIC_BASE_URL", "DEFAULT_FROM_EMAIL", "FISCOBRIDGE_TRUSTED_PROXY_COUNT", "ALLOWED_HOSTS")
    if os.environ.get(name, "").strip()
}
if ENVIRONMENT not in {"development", "production"}:
    raise environ.ImproperlyConfigured("FISCOBRIDGE_ENV must be 'development' or 'production'")
PRODUCTION = ENVIRONMENT == "production"

DATA_DIR = Path(env.str("FISCOBRIDGE_DATA_DIR", default="./var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret(name: str) -> str:
    """A secret from the environment; in development, created once in the data directory."""
    value = env.str(name, default="")
    if value:
        return value
    if PRODUCTION:
        raise environ.ImproperlyConfigured(f"{name} must be set when FISCOBRIDGE_ENV=production")
    return load_or_create_secret(DATA_DIR / "secrets" / name.lower())


SECRET_KEY = _secret("DJANGO_SECRET_KEY")
# HMAC key for activation-key codes and API tokens: losing it makes every stored key unusable.
KEY_HMAC_SECRET = _secret("FISCOBRIDGE_KEY_SECRET")
# Encrypts uploaded certificate files and their passwords at rest (Fernet, via HKDF).
ENCRYPTION_SECRET = _secret("FISCOBRIDGE_ENCRYPTION_KEY")
# Previous encryption secrets, comma-separated: still decrypt, never encrypt (key rotation).
ENCRYPTION_OLD_SECRETS = env.list("FISCOBRIDGE_ENCRYPTION_OLD_KEYS", default=[])

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver", "[::1]"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_tasks",
    "django_tasks_db",
    "fiscobridge.tasks",
    "fiscobridge.accounts",
    "fiscobridge.audit",
    "fiscobridge.subscriptions",
    "fiscobridge.keys",
    "fiscobridge.pos",
    "fiscobridge.leases",
    "fiscobridge.integrations",
    "fiscobridge.billing",
    "fiscobridge.notifications",
    "fiscobridge.webhooks",
    "fiscobridge.partners",
    "fiscobridge.portal",
    "fiscobridge.staff",
    "fiscobridge.api",
]

MIDDLEWARE = [
    # First: the request id for every log line, the app's access line and the latency metric,
    # around everything else (web/request_log.py).
    "fiscobridge.web.request_log.RequestLogMiddleware",
    "fiscobridge.api.middleware.ApiErrorBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # URL and body size limits from the headers, before any view or CSRF check reads a body.
    "fiscobridge.web.guards.RequestGuardMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "fiscobridge.web.two_factor_middleware.TwoFactorMiddleware",
    # Retries of the API's writes with an Idempotency-Key get the first answer (SPEC 8).
    "fiscobridge.api.idempotency.IdempotencyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    # The tenant's time zone for the page (after authentication and the two-factor step).
    "fiscobridge.web.time_zone_middleware.TenantTimeZoneMiddleware",
]

ROOT_URLCONF = "fiscobridge.urls"
WSGI_APPLICATION = "fiscobridge.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "fiscobridge.web.context_processors.limits",
            ],
            # `|moment` and `|day`: local time in every template without a {% load %}.
            "builtins": ["fiscobridge.web.time_filters"],
        },
    }
]

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'fiscobridge.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two redemptions never both read "available"
    # and then deadlock on the upgrade; the timeout lets writers queue instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # A file, not the in-memory default: concurrency tests use one connection per thread.
    DATABASES["default"]["TEST"] = {"NAME": env.str("SQLITE_TEST_NAME", default=str(DATA_DIR / "test.sqlite3"))}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    # A health check is one more round trip at the start of every request that uses the database
    # (a SELECT 1, on the hot paths too); without it, after a database restart each web process
    # notices the broken connection on its next request and reconnects (docs/decisions.md).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=False)
    # Server-side parameters and prepared statements: PostgreSQL plans a hot statement once per
    # connection instead of on every request (bench/README.md). Turn off behind a pooler in
    # transaction mode (PgBouncer < 1.21), which cannot keep prepared statements.
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": env.int("DATABASE_PREPARE_THRESHOLD", default=5)}
        )
    test_name = env.str("POSTGRES_TEST_NAME", default="")
    if test_name:
        DATABASES["default"]["TEST"] = {"NAME": test_name}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
PASSWORD_RESET_TIMEOUT = 3 * 24 * 3600

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# One language (English): no translation machinery on every rendered value (issue 9: it was a
# tenth of a keys page). Turn on with the first translation.
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on a missing root before collectstatic
STATICFILES_DIRS = [BASE_DIR / "static"]
# Development and tests serve straight from the source folders (no collectstatic needed, an
# edited file shows at once); production serves only what `collectstatic` wrote.
WHITENOISE_USE_FINDERS = not PRODUCTION
# Production: names carry a hash of the content (css/fiscobridge.3f2a….css), so browsers and
# proxies may cache them forever and a release never mixes old and new files. The manifest is
# written by `collectstatic`, which `fiscobridge migrate` and `fiscobridge serve` run. Development
# and tests keep plain names: no manifest to keep fresh, and a missing file is not a 500.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "whitenoise.storage.CompressedStaticFilesStorage"
    },
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if PRODUCTION else 0)
# Off unless every subdomain is HTTPS-only and you want the browsers' preload list (docs/operations.md).
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Content-Security-Policy (django-csp; docs/decisions.md). Only our own origin: no inline
# script or style, no eval. `form-action` is left out on purpose: Chrome applies it to the
# redirect after a form post, and Purchase Seats posts to us and is sent on to Stripe Checkout.
# The API docs page adds `img-src data:` for Swagger UI's icons (fiscobridge/api/api.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
_csp_report_uri = env.str("CSP_REPORT_URI", default="")
if _csp_report_uri:
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [_csp_report_uri]

# --- Two-factor sign-in (django-otp; docs/two-factor.md). Required for staff always, for a
# partner's users when the partner says so; customers may turn it on.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="FiscoBridge")
# Wrong codes in a row before a half-finished sign-in is dropped and the password is asked again
# (django-otp also doubles a device's waiting time after each wrong code).
TWO_FACTOR_MAX_ATTEMPTS = env.int("TWO_FACTOR_MAX_ATTEMPTS", default=5)
# How long the second step waits for its code after a correct password.
TWO_FACTOR_PENDING_SECONDS = env.int("TWO_FACTOR_PENDING_SECONDS", default=300)
TWO_FACTOR_RECOVERY_CODES = 10

# --- django-axes: portal login lockout (activation-key attempts have their own limits below)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_VERBOSE = False
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# What axes records as the username: the typed e-mail, cut to its column and without control
# characters (a 256-character or NUL-bearing username must be a failed login, not a 500).
AXES_USERNAME_CALLABLE = "fiscobridge.accounts.login_audit.attempted_username"

# --- Client IP: the connection's address unless we sit behind that many trusted proxies. One
# rule for everything (core/net.py): key-attempt limits, login lockouts (axes), audit events.
FISCOBRIDGE_TRUSTED_PROXY_COUNT = env.int("FISCOBRIDGE_TRUSTED_PROXY_COUNT", default=0)
if FISCOBRIDGE_TRUSTED_PROXY_COUNT > 0:
    # Behind a TLS-terminating proxy the request reaches us over HTTP: the proxy's
    # X-Forwarded-Proto says whether the client used HTTPS (else SECURE_SSL_REDIRECT loops).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
AXES_CLIENT_IP_CALLABLE = "fiscobridge.core.net.client_ip"

# --- Failed activation-key attempts (SPEC 2.6). Only "not available" answers count.
REDEEM_SESSION_FAILURE_LIMIT = env.int("REDEEM_SESSION_FAILURE_LIMIT", default=5)
REDEEM_SESSION_LOCK_SECONDS = env.int("REDEEM_SESSION_LOCK_SECONDS", default=15 * 60)
REDEEM_SESSION_WINDOW_SECONDS = env.int("REDEEM_SESSION_WINDOW_SECONDS", default=3600)
REDEEM_ACCOUNT_FAILURE_LIMIT = env.int("REDEEM_ACCOUNT_FAILURE_LIMIT", default=20)
REDEEM_ACCOUNT_WINDOW_SECONDS = env.int("REDEEM_ACCOUNT_WINDOW_SECONDS", default=24 * 3600)
REDEEM_IP_FAILURE_LIMIT = env.int("REDEEM_IP_FAILURE_LIMIT", default=50)
REDEEM_IP_WINDOW_SECONDS = env.int("REDEEM_IP_WINDOW_SECONDS", default=3600)

# --- Keys and quotas
KEY_ISSUE_MAX_PER_REQUEST = env.int("KEY_ISSUE_MAX_PER_REQUEST", default=10_000)
# The Partner Portal issues up to this many keys in the request; a larger batch runs as a task with
# a progress bar, its codes kept encrypted until their one download (docs/partner-portal.md).
KEY_ISSUE_DIRECT_MAX = env.int("KEY_ISSUE_DIRECT_MAX", default=1_000)
TIER_QUOTAS = {
    # tier: (invoices per connection per month, sync interval in minutes)
    "starter": (env.int("TIER_STARTER_INVOICES", default=500), env.int("TIER_STARTER_SYNC_MINUTES", default=60)),
    "growth": (env.int("TIER_GROWTH_INVOICES", default=2000), env.int("TIER_GROWTH_SYNC_MINUTES", default=15)),
    "scale": (env.int("TIER_SCALE_INVOICES", default=10000), env.int("TIER_SCALE_SYNC_MINUTES", default=5)),
}
TRIAL_CONNECTIONS = env.int("TRIAL_CONNECTIONS", default=1)
TRIAL_INVOICES_PER_MONTH = env.int("TRIAL_INVOICES_PER_MONTH", default=50)
# Integrations warns (meter, banner) when a tier has used this share of its monthly invoices.
INVOICE_WARNING_PERCENT = env.int("INVOICE_WARNING_PERCENT", default=80)
CERTIFICATE_MAX_BYTES = env.int("CERTIFICATE_MAX_BYTES", default=1024 * 1024)
# Opening a PKCS#12 file runs each key derivation as many rounds as the file asks. Real tools
# write 2,048 (OpenSSL, macOS), 2,000 (Windows) or 10,000 (Java keytool): a million is 100 times
# the most common and takes ~0.2 s; more is refused before deriving anything. Counts hidden in
# encrypted parts are caught by the time bound: parsing runs in a child process with this much CPU.
CERTIFICATE_MAX_KDF_ITERATIONS = env.int("CERTIFICATE_MAX_KDF_ITERATIONS", default=1_000_000)
CERTIFICATE_PARSE_SECONDS = env.int("CERTIFICATE_PARSE_SECONDS", default=5)
DATA_UPLOAD_MAX_MEMORY_SIZE = 3 * 1024 * 1024  # above the certificate limit, so we answer it ourselves
# Refused from the headers before anything reads the body (web/guards.py): every request, and
# lower for requesters who are neither signed in nor hold a valid API token (login, password
# reset, Stripe's webhooks). URLs longer than this get 414 from the app (gunicorn stops at 1 MiB).
REQUEST_MAX_BODY_BYTES = env.int("REQUEST_MAX_BODY_BYTES", default=3 * 1024 * 1024)
REQUEST_MAX_ANONYMOUS_BODY_BYTES = env.int("REQUEST_MAX_ANONYMOUS_BODY_BYTES", default=512 * 1024)
REQUEST_MAX_URL_BYTES = env.int("REQUEST_MAX_URL_BYTES", default=8 * 1024)
# Idempotency keys (SPEC 8, api/idempotency.py): answers kept this long; a first request that
# never answered (its process died) frees its key after this many seconds (above gunicorn's timeout).
IDEMPOTENCY_KEEP_HOURS = env.int("IDEMPOTENCY_KEEP_HOURS", default=24)
IDEMPOTENCY_STALE_SECONDS = env.int("IDEMPOTENCY_STALE_SECONDS", default=120)
# Offline leases (SPEC 9.1, docs/leases.md): the longest a lease lets a POS sign without asking
# again, and how long each process keeps the current signing key before reading it again (a
# rotation reaches every process within this; a retired key stays published that much longer).
LEASE_HOURS = env.int("LEASE_HOURS", default=72)
LEASE_KEY_CACHE_SECONDS = env.int("LEASE_KEY_CACHE_SECONDS", default=60)
if LEASE_HOURS < 1 or LEASE_KEY_CACHE_SECONDS < 0:
    raise environ.ImproperlyConfigured("LEASE_HOURS must be at least 1 and LEASE_KEY_CACHE_SECONDS at least 0")

# --- Logs (docs/observability.md): `plain` lines, or `json`, one object per line with the
# request's id, who is calling and the URL pattern (core/json_log.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise environ.ImproperlyConfigured("LOG_FORMAT must be 'plain' or 'json'")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "fiscobridge.core.json_log.JsonLineFormatter"},
    },
    "filters": {
        # The request (or task run) a line belongs to (core/log_context.py).
        "context": {"()": "fiscobridge.core.log_context.LogContextFilter"},
        # Whatever still looks like a key, a token or a password is rewritten (core/redact.py).
        "redact": {"()": "fiscobridge.core.redact.RedactSecrets"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context", "redact"]}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# --- E-mail (docs/notifications.md): SMTP when EMAIL_HOST is set, else the console backend
# (printed, not delivered) — a missing SMTP server never stops the portal. EMAIL_BACKEND, when
# set, wins over both.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)  # implicit TLS, usually port 465
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=not EMAIL_USE_SSL)  # STARTTLS, usually port 587
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise environ.ImproperlyConfigured("Set at most one of EMAIL_USE_TLS and EMAIL_USE_SSL")
EMAIL_TIMEOUT = env.float(
    "EMAIL_TIMEOUT", default=10.0
)  # seconds per SMTP operation (fractions allowed), in the worker
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
# Where the file-based backend (`make run` without SMTP) writes each message.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(DATA_DIR / "sent-mail"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="FiscoBridge <no-reply@fiscobridge.localhost>")
# Links in e-mails use PUBLIC_BASE_URL (the portal's address, set with the Stripe settings below).
if PRODUCTION and EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend":
    # The console backend prints e-mails, password-reset links included, into the server log.
    raise environ.ImproperlyConfigured(
        "FISCOBRIDGE_ENV=production needs a real mail server: set EMAIL_HOST (SMTP) or EMAIL_BACKEND"
    )
# Password-reset requests per client IP and per e-mail address per hour (accounts/password_reset.py).
PASSWORD_RESET_PER_IP_PER_HOUR = env.int("PASSWORD_RESET_PER_IP_PER_HOUR", default=10)
PASSWORD_RESET_PER_EMAIL_PER_HOUR = env.int("PASSWORD_RESET_PER_EMAIL_PER_HOUR", default=3)
NOTIFICATIONS_REMINDER_DAYS = env.list("NOTIFICATIONS_REMINDER_DAYS", cast=int, default=[30, 7, 1])
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=10)

# Webhooks (docs/webhooks.md): partners' endpoints on private, loopback or link-local addresses
# are refused (they could reach our own network), unless this says otherwise (tests, an on-site
# install whose partners' systems are on the LAN).
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", default=False)

# --- Task queue (docs/tasks.md): Django's Tasks API with the database backend; `fiscobridge
# worker` runs the tasks and the periodic jobs of fiscobridge/jobs.py. TASKS_BACKEND may name
# another Tasks backend (e.g. a Redis one); tasks are then enqueued after the commit instead.
TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}
# How often a worker looks for due periodic jobs (seconds), and how long finished task results
# are kept (days); failed ones are kept for staff three times as long.
TASKS_SCHEDULE_TICK_SECONDS = env.int("TASKS_SCHEDULE_TICK_SECONDS", default=30)
# Retention (fiscobridge/prune.py, `fiscobridge prune`, daily by the worker). Audit events are kept
# forever unless AUDIT_KEEP_DAYS is set.
PRUNE_ATTEMPTS_DAYS = env.int("PRUNE_ATTEMPTS_DAYS", default=90)
PRUNE_LOGIN_LOGS_DAYS = env.int("PRUNE_LOGIN_LOGS_DAYS", default=90)
PRUNE_SENT_EMAILS_DAYS = env.int("PRUNE_SENT_EMAILS_DAYS", default=90)
PRUNE_WEBHOOK_EVENTS_DAYS = env.int("PRUNE_WEBHOOK_EVENTS_DAYS", default=30)  # with their delivery log
AUDIT_KEEP_DAYS = env.int("AUDIT_KEEP_DAYS", default=0) or None
# `/readyz` fails when the newest worker heartbeat (one per schedule tick) is older than this.
READY_WORKER_MAX_AGE_SECONDS = env.int("READY_WORKER_MAX_AGE_SECONDS", default=120)
TASKS_KEEP_RESULTS_DAYS = env.int("TASKS_KEEP_RESULTS_DAYS", default=7)
# A task still running after this long lost its worker: it is marked failed and enqueued again.
TASKS_LOST_AFTER_SECONDS = env.int("TASKS_LOST_AFTER_SECONDS", default=3600)

# --- Stripe: buy online (docs/billing.md). Without the secret key, the webhook secret and a
# price of a product, Purchase Seats explains that online purchase is not configured.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")  # a local Stripe-compatible server (tests)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
STRIPE_PRICE_POS_MONTHLY = env.str("STRIPE_PRICE_POS_MONTHLY", default="")
STRIPE_PRICE_POS_YEARLY = env.str("STRIPE_PRICE_POS_YEARLY", default="")
STRIPE_PRICE_INT_STARTER_MONTHLY = env.str("STRIPE_PRICE_INT_STARTER_MONTHLY", default="")
STRIPE_PRICE_INT_STARTER_YEARLY = env.str("STRIPE_PRICE_INT_STARTER_YEARLY", default="")
STRIPE_PRICE_INT_GROWTH_MONTHLY = env.str("STRIPE_PRICE_INT_GROWTH_MONTHLY", default="")
STRIPE_PRICE_INT_GROWTH_YEARLY = env.str("STRIPE_PRICE_INT_GROWTH_YEARLY", default="")
STRIPE_PRICE_INT_SCALE_MONTHLY = env.str("STRIPE_PRICE_INT_SCALE_MONTHLY", default="")
STRIPE_PRICE_INT_SCALE_YEARLY = env.str("STRIPE_PRICE_INT_SCALE_YEARLY", default="")
# A past_due subscription keeps its seats this long after we first see it unpaid.
# Purchase Seats shows the configured Prices, read from Stripe and cached this long (docs/billing.md).
STRIPE_PRICE_CACHE_SECONDS = env.int("STRIPE_PRICE_CACHE_SECONDS", default=3600)
STRIPE_PAST_DUE_GRACE_DAYS = env.int("STRIPE_PAST_DUE_GRACE_DAYS", default=7)
# The portal's address as browsers reach it: Stripe sends customers back to it after Checkout.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Metrics (docs/observability.md): GET /metrics with `Authorization: Bearer <METRICS_TOKEN>`;
# without a token the endpoint is off (404). Under gunicorn, `fiscobridge serve` keeps each
# worker's figures in PROMETHEUS_MULTIPROC_DIR so that a scrape sums them (gunicorn_conf.py).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
