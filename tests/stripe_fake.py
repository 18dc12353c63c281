"""A local Stripe for the billing tests: nothing leaves 127.0.0.1.

Two servers, both started by the `stripe_server` fixture (conftest.py), once per test process:
- **localstripe** (PyPI, a test-only dependency) in a subprocess: a stateful Stripe-compatible
  server for customers, products, plans (our price ids), payment methods, subscriptions,
  invoices and events. The real `stripe` SDK talks to it as to Stripe.
- **FakeStripe**, a small threaded http.server of ours in front of it (the STRIPE_API_BASE the
  app uses). It serves what localstripe lacks — Checkout Sessions, Customer Portal sessions and
  the hosted pages a browser is sent to — records every request, can fail the next matching
  request, and forwards everything else to localstripe. localstripe's subscription update does
  not know `proration_behavior` / `payment_behavior`: the front records them and drops them
  before forwarding. Its invoices have no hosted page: the front adds `hosted_invoice_url`.

Webhook events are signed here exactly as Stripe signs them (HMAC-SHA256 over "t.payload").
"""

import hashlib
import hmac
import http.client
import json
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import stripe

SECRET_KEY = "sk_test_fiscobridge_local"
WEBHOOK_SECRET = "whsec_test_fiscobridge_local"
PRICES = {
    "STRIPE_PRICE_POS_MONTHLY": ("price_pos_monthly", "month", 1500),
    "STRIPE_PRICE_POS_YEARLY": ("price_pos_yearly", "year", 15000),
    "STRIPE_PRICE_INT_STARTER_MONTHLY": ("price_int_starter_monthly", "month", 2000),
    "STRIPE_PRICE_INT_STARTER_YEARLY": ("price_int_starter_yearly", "year", 20000),
    "STRIPE_PRICE_INT_GROWTH_MONTHLY": ("price_int_growth_monthly", "month", 5000),
    "STRIPE_PRICE_INT_GROWTH_YEARLY": ("price_int_growth_yearly", "year", 50000),
    "STRIPE_PRICE_INT_SCALE_MONTHLY": ("price_int_scale_monthly", "month", 15000),
    "STRIPE_PRICE_INT_SCALE_YEARLY": ("price_int_scale_yearly", "year", 150000),
}
# The markets' currencies: Fiji dollars, Samoan tālā, and the vatu, which has no minor unit
# (VUV 5,000 is an amount of 5000).
CURRENCIES = {"pos": "fjd", "starter": "wst", "growth": "vuv", "scale": "fjd"}
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"  # attaches, then every charge is declined


def unflatten(pairs) -> dict:
    """Stripe's form encoding (a[b][0][c]=v) back into nested dicts and lists."""
    root: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(root)


def _lists(node):
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


@dataclass
class Recorded:
    method: str
    path: str
    params: dict
    headers: dict


@dataclass
class Failure:
    """A canned answer for the next matching request (an error, or an object localstripe lacks)."""

    method: str
    pattern: str
    status: int
    body: dict


@dataclass
class FakeStripe:
    localstripe_port: int
    process: subprocess.Popen
    server: ThreadingHTTPServer | None = None
    requests: list[Recorded] = field(default_factory=list)
    sessions: dict[str, dict] = field(default_factory=dict)
    portal_sessions: dict[str, dict] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    webhook_url: str = ""  # where the hosted "Pay" button delivers checkout.session.completed
    undelivered: list[dict] = field(default_factory=list)  # events of "Pay" while webhook_url is unset
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- life cycle ---
    @classmethod
    def start(cls) -> "FakeStripe":
        runner = Path(__file__).with_name("localstripe_server.py")
        # stdin stays open while this process lives: localstripe exits when it closes, even if the
        # tests are killed before their teardown runs.
        process = subprocess.Popen(
            [sys.executable, str(runner)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = process.stdout.readline().strip()
        if not line.isdigit():
            process.kill()
            raise RuntimeError("localstripe did not start")
        fake = cls(localstripe_port=int(line), process=process)
        fake._wait_until_up()
        handler = type("Handler", (_Handler,), {"fake": fake})
        fake.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        fake.server.daemon_threads = True
        threading.Thread(target=fake.server.serve_forever, daemon=True).start()
        return fake

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self._localstripe("DELETE", "/_config/data")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("localstripe is not answering")

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def localstripe_url(self) -> str:
        return f"http://127.0.0.1:{self.localstripe_port}"

    def reset(self) -> None:
        """A fresh Stripe for each test: no objects but the products and our price ids."""
        self._localstripe("DELETE", "/_config/data")
        with self.lock:
            self.requests.clear()
            self.sessions.clear()
            self.portal_sessions.clear()
            self.failures.clear()
            self.undelivered.clear()
        self.webhook_url = ""
        client = self.stripe()
        products = {}
        for price_id, interval, amount in PRICES.values():
            name = "Cloud POS" if "_pos_" in price_id else "Integrations " + price_id.split("_")[2].capitalize()
            if name not in products:
                products[name] = client.v1.products.create({"name": name}).id
            currency = CURRENCIES["pos" if "_pos_" in price_id else price_id.split("_")[2]]
            client.v1.plans.create(
                {
                    "id": price_id,
                    "amount": amount,
                    "currency": currency,
                    "interval": interval,
                    "product": products[name],
                }
            )

    # --- helpers for tests ---
    def stripe(self) -> stripe.StripeClient:
        """An SDK client straight to localstripe: the test's own hand on the Stripe side."""
        return stripe.StripeClient(SECRET_KEY, base_addresses={"api": self.localstripe_url}, max_network_retries=0)

    def fail_next(self, method: str, pattern: str, *, status: int = 500, error: dict | None = None) -> None:
        """The next request whose path matches `pattern` gets this error instead of an answer."""
        error = error or {"type": "api_error", "message": "Injected failure"}
        self.answer_next(method, pattern, status=status, body={"error": error})

    def answer_next(self, method: str, pattern: str, *, status: int = 200, body: dict) -> None:
        """The next matching request gets this answer: a Stripe object localstripe cannot make."""
        with self.lock:
            self.failures.append(Failure(method, pattern, status, body))

    def decline_next(self, method: str, pattern: str) -> None:
        self.fail_next(
            method,
            pattern,
            status=402,
            error={
                "type": "card_error",
                "code": "card_declined",
                "message": "Your card was declined.",
            },
        )

    def requests_to(self, method: str, pattern: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    def add_card(self, customer_id: str, number: str = GOOD_CARD) -> str:
        client = self.stripe()
        method = client.v1.payment_methods.create(
            {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"}}
        )
        client.v1.payment_methods.attach(method.id, {"customer": customer_id})
        client.v1.customers.update(customer_id, {"invoice_settings": {"default_payment_method": method.id}})
        return method.id

    def complete_checkout(self, session_id: str) -> dict:
        """What Stripe does when the customer pays: a subscription, then checkout.session.completed."""
        with self.lock:
            session = self.sessions[session_id]
        item = session["_line_items"][0]
        self.add_card(session["customer"])
        subscription = self.stripe().v1.subscriptions.create(
            {
                "customer": session["customer"],
                "items": [{"plan": item["price"], "quantity": int(item["quantity"])}],
                "metadata": session.get("_subscription_metadata") or {},
            }
        )
        with self.lock:
            session.update(status="complete", payment_status="paid", subscription=subscription.id)
            public = {k: v for k, v in session.items() if not k.startswith("_")}
        return make_event("checkout.session.completed", public)

    def subscription(self, subscription_id: str) -> dict:
        return self.stripe().v1.subscriptions.retrieve(subscription_id).to_dict()

    def events(self, type_: str) -> list[dict]:
        """Events localstripe generated itself (oldest first)."""
        page = self.stripe().v1.events.list({"limit": 100})
        return [e.to_dict() for e in reversed(page.data) if e.type == type_]

    # --- plumbing ---
    def _localstripe(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.localstripe_port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read(), response.getheader("Content-Type") or "application/json"
        finally:
            connection.close()

    def _take_failure(self, method: str, path: str) -> Failure | None:
        with self.lock:
            for failure in self.failures:
                if failure.method == method and re.fullmatch(failure.pattern, path):
                    self.failures.remove(failure)
                    return failure
        return None


def make_event(type_: str, obj: dict, *, event_id: str | None = None, created: int | None = None) -> dict:
    return {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": type_,
        "api_version": "2026-10-28.endive",
        "created": created or int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj},
    }


def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for a payload, as Stripe computes it."""
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


def post_event(client, event: dict, **sign_options):
    """Deliver a signed event to the webhook endpoint with a Django test client."""
    payload = json.dumps(event).encode()
    return client.post(
        "/billing/webhook/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, **sign_options),
    )


def deliver_over_http(url: str, event: dict) -> int:
    """Deliver a signed event over real HTTP (to a live server), as Stripe does."""
    payload = json.dumps(event).encode()
    request = urllib.request.Request(
        url,
        data=payload,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": sign(payload),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStripe
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet
        pass

    # --- responses ---
    def _send(self, status: int, body: bytes, content_type: str = "application/json", extra: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict):
        self._send(status, json.dumps(data).encode(), extra={"Stripe-Should-Retry": "false"} if status >= 400 else None)

    def _error(self, status: int, message: str, type_: str = "invalid_request_error"):
        self._json(status, {"error": {"type": type_, "message": message}})

    def _html(self, status: int, html: str):
        self._send(status, html.encode(), "text/html; charset=utf-8")

    # --- dispatch ---
    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    def _handle(self, method: str):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        pairs = parse_qsl(body.decode() if method == "POST" else parts.query, keep_blank_values=True)
        params = unflatten(pairs)
        fake = self.fake
        if parts.path.startswith("/v1/"):
            with fake.lock:
                fake.requests.append(Recorded(method, parts.path, params, dict(self.headers)))
            if not (self.headers.get("Authorization") or "").startswith("Bearer sk_"):
                return self._error(401, "Invalid API key")
            canned = fake._take_failure(method, parts.path)
            if canned is not None:
                return self._json(canned.status, canned.body)
        route = [
            ("POST", r"/v1/checkout/sessions", self._create_session),
            ("GET", r"/v1/checkout/sessions/(?P<id>[\w]+)", self._get_session),
            ("GET", r"/v1/prices/(?P<id>[\w]+)", self._get_price),
            ("POST", r"/v1/billing_portal/sessions", self._create_portal_session),
            ("GET", r"/checkout/(?P<id>[\w]+)", self._checkout_page),
            ("POST", r"/checkout/(?P<id>[\w]+)/pay", self._pay),
            ("GET", r"/portal/(?P<id>[\w]+)", self._portal_page),
            ("GET", r"/invoices/(?P<id>[\w]+)", self._invoice_page),
        ]
        for route_method, pattern, view in route:
            match = re.fullmatch(pattern, parts.path)
            if method == route_method and match:
                return view(params, **match.groupdict())
        if not parts.path.startswith("/v1/"):
            return self._error(404, "Not found")
        return self._forward(method, parts, body, params)

    def _forward(self, method, parts, body, params):
        fake = self.fake
        if method == "POST" and re.fullmatch(r"/v1/subscriptions/\w+", parts.path):
            # localstripe's update has no proration or payment behaviour: recorded above, dropped here.
            pairs = [
                (k, v)
                for k, v in parse_qsl(body.decode(), keep_blank_values=True)
                if k not in ("proration_behavior", "payment_behavior")
            ]
            body = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs).encode()
        headers = {
            "Authorization": self.headers.get("Authorization", ""),
            "Content-Type": self.headers.get("Content-Type") or "application/x-www-form-urlencoded",
        }
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        status, data, content_type = fake._localstripe(method, path, body if method == "POST" else None, headers)
        if method == "GET" and parts.path == "/v1/invoices" and status == 200:
            listing = json.loads(data)
            for invoice in listing.get("data", []):
                invoice.setdefault("hosted_invoice_url", None)
                invoice["hosted_invoice_url"] = invoice["hosted_invoice_url"] or f"{fake.url}/invoices/{invoice['id']}"
                invoice["number"] = invoice.get("number") or "FB-" + invoice["id"][-6:].upper()
            data = json.dumps(listing).encode()
        extra = {"Stripe-Should-Retry": "false"} if status >= 400 else None
        self._send(status, data, content_type, extra)

    # --- Prices (localstripe knows only their older form, plans: the same ids and amounts) ---
    def _get_price(self, params, id):
        status, data, _ = self.fake._localstripe(
            "GET", f"/v1/plans/{id}", headers={"Authorization": self.headers["Authorization"]}
        )
        if status != 200:
            return self._error(404, f"No such price: '{id}'")
        plan = json.loads(data)
        price = {
            "id": plan["id"],
            "object": "price",
            "active": True,
            "currency": plan["currency"],
            "unit_amount": plan["amount"],
            "product": plan["product"],
            "recurring": {"interval": plan["interval"], "interval_count": plan.get("interval_count", 1)},
            "type": "recurring",
        }
        return self._json(200, price)

    # --- Checkout Sessions ---
    def _create_session(self, params):
        fake = self.fake
        required = ["mode", "customer", "line_items", "success_url", "cancel_url"]
        missing = [name for name in required if not params.get(name)]
        if missing:
            return self._error(400, f"Missing required param: {missing[0]}")
        if params["mode"] != "subscription":
            return self._error(400, "Only subscription mode is served here")
        status, _, _ = fake._localstripe(
            "GET", f"/v1/customers/{params['customer']}", headers={"Authorization": self.headers["Authorization"]}
        )
        if status != 200:
            return self._error(400, f"No such customer: '{params['customer']}'")
        items = params["line_items"]
        if len(items) != 1 or not str(items[0].get("quantity", "")).isdigit():
            return self._error(400, "Exactly one line item with a quantity")
        status, _, _ = fake._localstripe(
            "GET", f"/v1/plans/{items[0].get('price')}", headers={"Authorization": self.headers["Authorization"]}
        )
        if status != 200:
            return self._error(400, f"No such price: '{items[0].get('price')}'")
        session_id = "cs_test_" + secrets.token_hex(12)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "subscription",
            "status": "open",
            "payment_status": "unpaid",
            "customer": params["customer"],
            "subscription": None,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "success_url": params["success_url"],
            "cancel_url": params["cancel_url"],
            "url": f"{fake.url}/checkout/{session_id}",
            "livemode": False,
            "created": int(time.time()),
            "_line_items": items,
            "_subscription_metadata": (params.get("subscription_data") or {}).get("metadata"),
        }
        with fake.lock:
            fake.sessions[session_id] = session
        self._json(200, {k: v for k, v in session.items() if not k.startswith("_")})

    def _get_session(self, params, id):
        with self.fake.lock:
            session = self.fake.sessions.get(id)
        if session is None:
            return self._error(404, f"No such checkout.session: '{id}'")
        self._json(200, {k: v for k, v in session.items() if not k.startswith("_")})

    def _create_portal_session(self, params):
        fake = self.fake
        if not params.get("customer"):
            return self._error(400, "Missing required param: customer")
        status, _, _ = fake._localstripe(
            "GET", f"/v1/customers/{params['customer']}", headers={"Authorization": self.headers["Authorization"]}
        )
        if status != 200:
            return self._error(400, f"No such customer: '{params['customer']}'")
        session_id = "bps_" + secrets.token_hex(12)
        session = {
            "id": session_id,
            "object": "billing_portal.session",
            "customer": params["customer"],
            "return_url": params.get("return_url"),
            "url": f"{fake.url}/portal/{session_id}",
            "livemode": False,
            "created": int(time.time()),
        }
        with fake.lock:
            fake.portal_sessions[session_id] = session
        self._json(200, session)

    # --- the pages a browser is sent to ---
    def _checkout_page(self, params, id):
        session = self.fake.sessions.get(id)
        if session is None:
            return self._html(404, "<h1>No such checkout</h1>")
        item = session["_line_items"][0]
        self._html(
            200,
            f"""<!doctype html><html lang="en"><head><title>Stripe Checkout (local test server)</title></head>
<body><h1>Stripe Checkout (local test server)</h1>
<p data-testid="line">{item["quantity"]} × {item["price"]}</p>
<form method="post" action="/checkout/{id}/pay"><button type="submit">Pay</button></form>
<p><a href="{session["cancel_url"]}">Back</a></p></body></html>""",
        )

    def _pay(self, params, id):
        fake = self.fake
        if id not in fake.sessions:
            return self._html(404, "<h1>No such checkout</h1>")
        event = fake.complete_checkout(id)
        if fake.webhook_url:
            deliver_over_http(fake.webhook_url, event)
        else:
            with fake.lock:
                fake.undelivered.append(event)
        target = fake.sessions[id]["success_url"].replace("{CHECKOUT_SESSION_ID}", id)
        self._send(303, b"", "text/plain", {"Location": target})

    def _portal_page(self, params, id):
        session = self.fake.portal_sessions.get(id)
        if session is None:
            return self._html(404, "<h1>No such portal session</h1>")
        self._html(
            200,
            f"""<!doctype html><html lang="en"><head><title>Customer portal (local test server)</title></head>
<body><h1>Customer portal (local test server)</h1><p>{session["customer"]}</p>
<a href="{session["return_url"]}">Return</a></body></html>""",
        )

    def _invoice_page(self, params, id):
        self._html(200, f"<!doctype html><title>Invoice {id}</title><h1>Invoice {id}</h1>")
