"""The deploy kit (deploy/): what can be proven on a machine without a container daemon.

- the entrypoint script: its dispatch with a stand-in `fiscobridge`, then the real release step
  and web server in production mode, run exactly as the container runs them (hashed static
  files, the health check, no migrations at web start-up);
- the systemd units: `systemd-analyze verify`, and their users, environment file and commands;
- the nginx site file: `nginx -t`, then a real nginx in front of a recording backend (TLS,
  forwarded headers, the body limit, the HTTP → HTTPS redirect);
- compose.yaml and the Dockerfile: read and checked, never run (deploy/README.md says so).
Missing tools (nginx, systemd-analyze) skip locally and fail with CI=true; scripts/test.sh
installs them.
"""

import configparser
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings
from django.http import HttpRequest

from fiscobridge.core.net import client_ip
from tests.app_server import stop_process_group

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
VENV_BIN = Path(sys.executable).parent
UNIT_VENV = "/opt/fiscobridge/venv"  # where the units expect the install (deploy/README.md)
GRACEFUL_TIMEOUT = 30  # gunicorn_conf's default GUNICORN_GRACEFUL_TIMEOUT
HOST = "portal.example.test"


def require_tool(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found:
        return found
    message = f"{name} is missing (apt-get install {package}; scripts/test.sh installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the entrypoint: dispatch ------------------------------------------------------------------


@pytest.fixture
def fake_bin(tmp_path):
    """A `fiscobridge` that prints its process id and arguments, first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "fiscobridge"
    fake.write_text('#!/bin/sh\necho "pid=$$"\nfor a in "$@"; do echo "arg=$a"; done\n')
    fake.chmod(0o755)
    return bin_dir


SHELLS = [shell for shell in ("dash", "bash") if shutil.which(shell)]


def run_entrypoint(shell, *args, path, env_extra=None):
    env = {"PATH": f"{path}:/usr/bin:/bin", **(env_extra or {})}
    # `exec` into the command keeps the shell's process id: what the stand-in prints proves it.
    process = subprocess.Popen(
        [shell, str(ENTRYPOINT), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = process.communicate(timeout=30)
    return process.pid, process.returncode, out, err


def called(out: str) -> list[str]:
    return [line.removeprefix("arg=") for line in out.splitlines() if line.startswith("arg=")]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("args", "env_extra", "expected"),
    [
        (["web"], {}, ["serve", "--no-migrate", "--host", "0.0.0.0", "--port", "8000"]),
        (
            ["web", "--workers", "2"],
            {"PORT": "9000"},
            ["serve", "--no-migrate", "--host", "0.0.0.0", "--port", "9000"] + ["--workers", "2"],
        ),
        (["worker"], {}, ["worker"]),
        (["worker", "--quiet"], {}, ["worker", "--quiet"]),
        (["release"], {}, ["migrate"]),
        (["fiscobridge", "manage", "check"], {}, ["manage", "check"]),
    ],
)
def test_entrypoint_dispatches_each_role_to_its_fiscobridge_command_by_exec(shell, fake_bin, args, env_extra, expected):
    pid, status, out, err = run_entrypoint(shell, *args, path=fake_bin, env_extra=env_extra)
    assert status == 0, err
    assert called(out) == expected
    assert f"pid={pid}" in out, "the entrypoint must exec (signals reach the server), not run a child"


@pytest.mark.parametrize("shell", SHELLS)
def test_entrypoint_runs_any_other_program_as_given(shell, fake_bin):
    _, status, out, _ = run_entrypoint(shell, "echo", "hello", "world", path=fake_bin)
    assert status == 0 and out == "hello world\n"


@pytest.mark.parametrize("shell", SHELLS)
def test_entrypoint_refuses_an_unknown_role_clearly(shell, fake_bin):
    _, status, out, err = run_entrypoint(shell, "serve-please", path=fake_bin)
    assert status == 127 and out == ""
    assert "unknown role or command 'serve-please'" in err and "web, worker, release" in err


@pytest.mark.parametrize("shell", SHELLS)
def test_entrypoint_without_a_role_prints_usage(shell, fake_bin):
    _, status, out, err = run_entrypoint(shell, path=fake_bin)
    assert status == 64 and out == "" and err.startswith("usage: entrypoint.sh web|worker|release")


@pytest.mark.parametrize("shell", SHELLS)
def test_entrypoint_healthcheck_fails_when_nothing_answers(shell, fake_bin):
    _, status, _, err = run_entrypoint(
        shell, "healthcheck", path=f"{fake_bin}:{VENV_BIN}", env_extra={"PORT": str(free_port())}
    )
    assert status == 1 and "healthcheck:" in err


def test_entrypoint_is_executable_in_git_and_on_disk():
    assert os.access(ENTRYPOINT, os.X_OK)
    mode = subprocess.run(
        ["git", "ls-files", "-s", "deploy/entrypoint.sh"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split(" ")[0]
    assert mode in ("", "100755"), "deploy/entrypoint.sh must be committed executable (the image copies its mode)"


# --- the entrypoint for real: release, then web, in production mode ----------------------------


def _throwaway_database(tmp_path):
    """A database of the pass's kind that nothing has migrated: (url, drop)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{tmp_path / 'release.sqlite3'}", lambda: None
    import psycopg

    server_url = url.replace("postgres://", "postgresql://", 1)
    name = f"fb_deploy_{os.getpid()}_{int(time.time())}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlsplit(url)._replace(path=f"/{name}").geturl(), drop


def production_env(tmp_path, database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "POSTGRES_TEST_NAME", "SQLITE_TEST_NAME"}}
    env.update(
        PATH=f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        FISCOBRIDGE_ENV="production",
        FISCOBRIDGE_DATA_DIR=str(tmp_path / "data"),
        DATABASE_URL=database_url,
        DJANGO_SECRET_KEY="deploy-test-" + "s" * 40,
        FISCOBRIDGE_KEY_SECRET="deploy-test-" + "k" * 40,
        FISCOBRIDGE_ENCRYPTION_KEY="deploy-test-" + "e" * 40,
        ALLOWED_HOSTS=HOST,
        CSRF_TRUSTED_ORIGINS=f"https://{HOST}",
        PUBLIC_BASE_URL=f"https://{HOST}",
        DEFAULT_FROM_EMAIL=f"FiscoBridge <no-reply@{HOST}>",
        EMAIL_HOST="127.0.0.1",
        FORWARDED_ALLOW_IPS="127.0.0.1",
        FISCOBRIDGE_TRUSTED_PROXY_COUNT="1",
        DEBUG="false",
        WEB_CONCURRENCY="1",
        PORT=str(free_port()),
    )
    return env


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """`entrypoint.sh release` then `entrypoint.sh web` on a fresh database, as the containers run."""
    tmp_path = tmp_path_factory.mktemp("release")
    database_url, drop = _throwaway_database(tmp_path)
    env = production_env(tmp_path, database_url)
    try:
        release = subprocess.run(
            ["sh", str(ENTRYPOINT), "release", "--quiet"], env=env, capture_output=True, text=True, timeout=180
        )
        assert release.returncode == 0, release.stdout + release.stderr
        log = open(tmp_path / "web.log", "w+")  # noqa: SIM115 (closed below)
        web = subprocess.Popen(
            ["sh", str(ENTRYPOINT), "web"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        base = f"http://127.0.0.1:{env['PORT']}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if web.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"web exited with {web.returncode}:\n{log.read()[-3000:]}")
                try:
                    with socket.create_connection(("127.0.0.1", int(env["PORT"])), timeout=1):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"web did not listen within 60 s:\n{log.read()[-3000:]}")
                time.sleep(0.2)
            yield {"env": env, "base": base, "release": release, "data": tmp_path / "data", "log": log}
        finally:
            stop_process_group(web, timeout=20)
            log.close()
    finally:
        drop()


def fetch(base: str, path: str, **headers):
    request = urllib.request.Request(base + path, headers={"Host": HOST, "X-Forwarded-Proto": "https", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_release_step_migrates_and_writes_static_files_under_hashed_names(released):
    assert "Release step done" in released["release"].stdout
    static = released["data"] / "static"
    manifest = json.loads((static / "staticfiles.json").read_text())["paths"]
    hashed = manifest["css/fiscobridge.css"]
    assert re.fullmatch(r"css/fiscobridge\.[0-9a-f]{12}\.css", hashed)
    assert (static / hashed).is_file() and (static / (hashed + ".gz")).is_file()
    # The database is ready: an API call that reads it answers 401 for a made-up token, not 503.
    status, _, body = fetch(released["base"], "/api/v1/subscriptions", Authorization="Bearer fbt_x_y")
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthenticated"


def test_production_pages_link_hashed_static_files_served_as_immutable(released):
    status, _, body = fetch(released["base"], "/login/")
    assert status == 200
    links = re.findall(r'href="(/static/css/fiscobridge\.[0-9a-f]{12}\.css)"', body.decode())
    assert links, "the login page links the stylesheet under its hashed name"
    status, headers, css = fetch(released["base"], links[0])
    assert status == 200 and css == (released["data"] / "static" / links[0].removeprefix("/static/")).read_bytes()
    assert "immutable" in headers["Cache-Control"] and "max-age=315360000" in headers["Cache-Control"]


def test_healthcheck_passes_against_the_running_web_container(released):
    process = subprocess.run(
        ["sh", str(ENTRYPOINT), "healthcheck"], env=released["env"], capture_output=True, text=True, timeout=30
    )
    assert process.returncode == 0, process.stderr


# --- systemd units -----------------------------------------------------------------------------

UNITS = {
    "fiscobridge-web.service": ["serve", "--no-migrate", "--host", "127.0.0.1", "--port", "8000"],
    "fiscobridge-worker.service": ["worker"],
    "fiscobridge-release.service": ["migrate"],
}


def read_unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((DEPLOY / "systemd" / name).read_text())
    return parser


def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    analyze = require_tool("systemd-analyze", "systemd")
    # The units name the production venv; verify checks that ExecStart exists, so point it here.
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text().replace(UNIT_VENV, str(VENV_BIN.parent))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", *(str(tmp_path / name) for name in UNITS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr
    )


def test_systemd_analyze_verify_catches_a_broken_unit(tmp_path):
    """The check above can fail: a unit with a relative ExecStart is refused."""
    analyze = require_tool("systemd-analyze", "systemd")
    text = (DEPLOY / "systemd" / "fiscobridge-worker.service").read_text()
    broken = tmp_path / "fiscobridge-worker.service"
    broken.write_text(text.replace(f"ExecStart={UNIT_VENV}/bin/fiscobridge", "ExecStart=fiscobridge/bin"))
    result = subprocess.run([analyze, "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


@pytest.mark.parametrize(("name", "arguments"), UNITS.items())
def test_systemd_unit_runs_its_command_as_the_service_user_with_the_environment_file(name, arguments):
    service = read_unit(name)["Service"]
    assert service["User"] == "fiscobridge" and service["Group"] == "fiscobridge"
    assert service["EnvironmentFile"] == "/etc/fiscobridge/fiscobridge.env"
    assert service["ExecStart"].split() == [f"{UNIT_VENV}/bin/fiscobridge", *arguments]
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["StateDirectory"] == "fiscobridge"


def test_systemd_web_and_worker_start_after_the_release_step_and_stop_gracefully():
    for name in ("fiscobridge-web.service", "fiscobridge-worker.service"):
        unit = read_unit(name)
        assert "fiscobridge-release.service" in unit["Unit"]["After"].split()
        assert unit["Service"]["KillSignal"] == "SIGTERM"
    web = read_unit("fiscobridge-web.service")["Service"]
    assert int(web["TimeoutStopSec"]) > GRACEFUL_TIMEOUT
    assert web["Type"] == "notify"  # gunicorn sends READY=1
    assert read_unit("fiscobridge-release.service")["Service"]["Type"] == "oneshot"


# --- nginx ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory):
    require_tool("openssl", "openssl")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={HOST}"]
        + ["-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return folder / "cert.pem", folder / "key.pem"


def nginx_config(folder: Path, tls_pair, upstream: str, http_port: int = 80, https_port: int = 443) -> Path:
    """A minimal nginx.conf around the site file, with this test's certificate, ports and paths."""
    cert, key = tls_pair
    site = (DEPLOY / "nginx" / "fiscobridge.conf").read_text()
    site = site.replace("/etc/nginx/tls/fiscobridge.crt", str(cert)).replace("/etc/nginx/tls/fiscobridge.key", str(key))
    site = site.replace("portal.example.com", HOST)
    site = re.sub(r"listen \[::\]:\d+[^;]*;", "", site)  # IPv6 may be off here
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    (folder / "site.conf").write_text(site)
    (folder / "upstream.conf").write_text(upstream)
    conf = folder / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
master_process off;
error_log {folder}/error.log warn;
pid {folder}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/upstream.conf;
    include {folder}/site.conf;
}}
"""
    )
    return conf


@pytest.mark.parametrize("upstream", ["upstream-local.conf", "upstream-compose.conf"])
def test_nginx_accepts_the_site_file_with_each_upstream(tmp_path, tls_pair, upstream):
    nginx = require_tool("nginx", "nginx")
    # compose's `web` resolves only inside compose; the upstream file is otherwise used as is.
    text = (DEPLOY / "nginx" / upstream).read_text().replace("server web:", "server 127.0.0.1:")
    conf = nginx_config(tmp_path, tls_pair, text)
    result = subprocess.run([nginx, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr and "[warn]" not in result.stderr, result.stderr


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).seen.append({"path": self.path, "headers": dict(self.headers), "peer": self.client_address[0]})
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, tls_pair):
    """A real nginx with the site file in front of a backend that records what reaches it."""
    nginx = require_tool("nginx", "nginx")
    folder = tmp_path_factory.mktemp("nginx")
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    http_port, https_port = free_port(), free_port()
    upstream = f"upstream fiscobridge_app {{ server 127.0.0.1:{backend.server_address[1]}; }}\n"
    conf = nginx_config(folder, tls_pair, upstream, http_port, https_port)
    process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(folder)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.05)
        yield {"http": http_port, "https": https_port, "seen": _Recorder.seen}
    finally:
        process.terminate()
        process.wait(timeout=10)
        backend.shutdown()


def https_request(proxied, method, path, body=None, headers=None):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", proxied["https"], timeout=10, context=context)
    try:
        connection.request(method, path, body=body, headers={"Host": HOST, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def test_nginx_forwards_scheme_host_and_the_client_address_the_app_trusts(proxied):
    proxied["seen"].clear()
    status, _, _ = https_request(proxied, "GET", "/portal/", headers={"X-Forwarded-For": "203.0.113.9"})
    assert status == 200
    [seen] = proxied["seen"]
    headers = {name.lower(): value for name, value in seen["headers"].items()}
    assert headers["host"] == HOST and headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    # With one trusted proxy the app takes nginx's entry, not the one the client sent.
    request = HttpRequest()
    request.META = {"REMOTE_ADDR": seen["peer"], "HTTP_X_FORWARDED_FOR": headers["x-forwarded-for"]}
    original = settings.FISCOBRIDGE_TRUSTED_PROXY_COUNT
    settings.FISCOBRIDGE_TRUSTED_PROXY_COUNT = 1
    try:
        assert client_ip(request) == "127.0.0.1"
    finally:
        settings.FISCOBRIDGE_TRUSTED_PROXY_COUNT = original


def test_nginx_body_limit_matches_the_app_and_answers_with_the_json_error_body(proxied):
    limit = settings.REQUEST_MAX_BODY_BYTES
    proxied["seen"].clear()
    status, _, _ = https_request(proxied, "POST", "/api/v1/pos/certificates", body=b"x" * limit)
    assert status == 200 and len(proxied["seen"]) == 1  # exactly the app's limit gets through
    status, content_type, body = https_request(proxied, "POST", "/api/v1/pos/certificates", body=b"x" * (limit + 1))
    assert status == 413 and content_type == "application/json"
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert len(proxied["seen"]) == 1


def test_nginx_sends_plain_http_to_https(proxied):
    connection = http.client.HTTPConnection("127.0.0.1", proxied["http"], timeout=10)
    try:
        connection.request("GET", "/login/?next=/portal/", headers={"Host": HOST})
        response = connection.getresponse()
        assert response.status == 301
        assert response.getheader("Location") == f"https://{HOST}/login/?next=/portal/"
    finally:
        connection.close()


# --- compose.yaml -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_has_database_release_two_web_replicas_worker_and_proxy(compose):
    services = compose["services"]
    assert set(services) == {"db", "release", "web", "worker", "proxy"}
    assert services["web"]["deploy"]["replicas"] == 2
    assert "replicas" not in services["worker"].get("deploy", {})
    for name in ("release", "web", "worker"):  # one image, built from the lock file
        assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert services["release"]["command"] == ["release"] and services["release"]["restart"] == "no"
    assert services["worker"]["command"] == ["worker"]


def test_compose_web_never_migrates_and_starts_after_a_successful_release(compose):
    services = compose["services"]
    web = services["web"]
    assert web["command"] == ["web"]  # entrypoint.sh: `serve --no-migrate` (tested above)
    for name in ("web", "worker"):
        depends = services[name]["depends_on"]
        assert depends["release"] == {"condition": "service_completed_successfully"}
        assert depends["db"] == {"condition": "service_healthy"}
    assert services["release"]["depends_on"]["db"] == {"condition": "service_healthy"}
    assert services["proxy"]["depends_on"]["web"] == {"condition": "service_healthy"}


def test_compose_health_checks_and_graceful_stops(compose):
    services = compose["services"]
    assert services["db"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert services["web"]["healthcheck"]["test"] == ["CMD", "fiscobridge-entrypoint", "healthcheck"]
    assert int(services["web"]["stop_grace_period"].removesuffix("s")) > GRACEFUL_TIMEOUT


def test_compose_proxy_terminates_tls_with_the_site_file_and_trusts_one_proxy(compose):
    services = compose["services"]
    proxy = services["proxy"]
    assert "443:443" in proxy["ports"]
    mounts = [volume.split(":")[0] for volume in proxy["volumes"]]
    assert "./nginx/fiscobridge.conf" in mounts and "./nginx/upstream-compose.conf" in mounts
    for mount in mounts:
        if mount.startswith("./nginx/"):
            assert (DEPLOY / mount).is_file()
    # Only the proxy is reachable from outside; the app trusts exactly one proxy in front.
    assert [name for name, service in services.items() if "ports" in service] == ["proxy"]
    environment = services["web"]["environment"]
    assert environment["FISCOBRIDGE_TRUSTED_PROXY_COUNT"] == "1" and environment["FORWARDED_ALLOW_IPS"]
    assert environment["DATABASE_URL"].startswith("postgres://") and "@db:5432/" in environment["DATABASE_URL"]


def test_compose_images_are_pinned(compose):
    for name, service in compose["services"].items():
        image = service["image"]
        if image.startswith("${"):
            continue  # our own image, built here
        repository, _, tag = image.partition(":")
        assert tag and tag != "latest", f"{name}: pin the image tag ({image})"


# --- the Dockerfile ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_is_multi_stage_from_a_pinned_slim_python():
    instructions = dockerfile_instructions()
    args = dict(value.split("=", 1) for kind, value in instructions if kind == "ARG" and "=" in value)
    images = [value.split()[0] for kind, value in instructions if kind == "FROM"]
    assert len(images) >= 2
    for image in images:
        image = re.sub(r"\$\{(\w+)\}", lambda match: args[match.group(1)], image)
        repository, _, tag = image.partition(":")
        assert repository == "python" and tag.startswith("3.11-slim") and tag != "latest"


def test_dockerfile_installs_exactly_the_lock_file_then_the_project_without_dependencies():
    runs = [value for kind, value in dockerfile_instructions() if kind == "RUN" and "pip install" in value]
    assert runs[0].endswith("pip install -r requirements.lock")
    assert "pip install --no-deps ." in runs[1]
    assert len(runs) == 2, "every other install would resolve versions outside the lock file"


def test_dockerfile_runs_as_a_non_root_user_with_the_entrypoint_and_web_by_default():
    instructions = dockerfile_instructions()
    last_stage = instructions[max(i for i, (kind, _) in enumerate(instructions) if kind == "FROM") :]
    users = [value for kind, value in last_stage if kind == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert ("ENTRYPOINT", '["fiscobridge-entrypoint"]') in last_stage
    assert ("CMD", '["web"]') in last_stage
    assert ("COPY", "deploy/entrypoint.sh /usr/local/bin/fiscobridge-entrypoint") in last_stage


def test_dockerfile_copies_only_files_that_exist_and_the_context_leaves_local_state_out():
    for kind, value in dockerfile_instructions():
        if kind == "COPY" and not value.startswith("--from"):
            *sources, _ = value.split()
            for source in sources:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)


# --- the environment file ---------------------------------------------------------------------


def test_environment_example_is_plain_key_value_lines_with_what_production_requires():
    """systemd's EnvironmentFile and compose's env_file read the same file: no quotes, no export."""
    entries = {}
    for line in (DEPLOY / "fiscobridge.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*=[^\"']*", line), line
            key, _, value = line.partition("=")
            entries[key] = value
    assert entries["FISCOBRIDGE_ENV"] == "production"
    required = {"DJANGO_SECRET_KEY", "FISCOBRIDGE_KEY_SECRET", "FISCOBRIDGE_ENCRYPTION_KEY", "ALLOWED_HOSTS"}
    assert required | {"EMAIL_HOST", "PUBLIC_BASE_URL", "FORWARDED_ALLOW_IPS"} <= set(entries)
    assert entries["FISCOBRIDGE_TRUSTED_PROXY_COUNT"] == "1"
    assert {f"GUNICORN_{name}" for name in ("TIMEOUT", "GRACEFUL_TIMEOUT", "MAX_REQUESTS", "KEEPALIVE")} <= set(entries)
