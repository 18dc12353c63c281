"""Signing in with a second factor, and the page where a user sets it up (both portals, staff).

After a right password, a user with an authenticator is not signed in yet: the session only
holds a *pending* sign-in (user id, when, where to go next) until a code from the authenticator
or a recovery code is entered. Nothing else accepts that session, the API included.
"""

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from fiscobridge.accounts import two_factor
from fiscobridge.accounts.errors import TwoFactorCodeInvalid
from fiscobridge.core import clock
from fiscobridge.core.errors import DomainError
from fiscobridge.core.net import client_ip

PENDING_KEY = "two_factor_pending"
CODE_MAX_LENGTH = 32  # a 6-digit code or a recovery code with its dash and some spaces


class LoginView(auth_views.LoginView):
    """The password step. With an authenticator, it leads to the code step instead of signing in."""

    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        if not two_factor.has_two_factor(user):
            return super().form_valid(form)
        # A new session id now, so an id planted before the password cannot ride the pending sign-in.
        self.request.session.cycle_key()
        self.request.session[PENDING_KEY] = {
            "user": user.pk,
            "backend": user.backend,
            "next": self.get_success_url(),
            "since": clock.now().timestamp(),
            "failures": 0,
        }
        return redirect("login_verify")


def _pending(request: HttpRequest):
    """The pending sign-in and its user, or (None, None) when there is none or it is too old."""
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None, None
    if clock.now().timestamp() - pending.get("since", 0) > settings.TWO_FACTOR_PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return None, None
    user = get_user_model().objects.filter(pk=pending.get("user"), is_active=True).first()
    if user is None:
        request.session.pop(PENDING_KEY, None)
    return (pending, user) if user is not None else (None, None)


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def login_verify(request: HttpRequest) -> HttpResponse:
    """The code step: an authenticator code or a recovery code completes the sign-in."""
    pending, user = _pending(request)
    if user is None:
        messages.info(request, "Enter your e-mail and password to sign in.")
        return redirect("login")
    error = None
    if request.method == "POST":
        code = request.POST.get("code", "")[:CODE_MAX_LENGTH]
        try:
            device = two_factor.verify_second_factor(user=user, token=code, ip=client_ip(request))
        except TwoFactorCodeInvalid as failure:
            pending["failures"] = pending.get("failures", 0) + 1
            if pending["failures"] >= settings.TWO_FACTOR_MAX_ATTEMPTS:
                # The password must be entered again (and django-axes counts those).
                request.session.pop(PENDING_KEY, None)
                messages.error(request, "Too many wrong codes. Sign in again.")
                return redirect("login")
            request.session[PENDING_KEY] = pending
            error = failure.message
        except DomainError as failure:  # throttled: django-otp's wait after a wrong code
            error = failure.message
        else:
            request.session.pop(PENDING_KEY, None)
            user.backend = pending["backend"]
            auth_login(request, user)  # rotates the session id again
            otp_login(request, device)
            return redirect(pending["next"])
    return render(request, "registration/login_verify.html", {"error": error})


# --- the set-up page ---------------------------------------------------------------------------


def _qr_svg(url: str) -> str:
    """The otpauth:// URL as an inline SVG drawn on the server (no script, no external image)."""
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    svg = image.to_string(encoding="unicode")
    # Sized by the stylesheet, not by the millimetres qrcode writes; a title names it for screen readers.
    svg = svg.replace('width="', 'data-w="', 1).replace('height="', 'data-h="', 1)
    return svg.replace(">", ' role="img" aria-labelledby="qr-title"><title id="qr-title">QR code to scan</title>', 1)


def _layout(user) -> str:
    if user.partner_id:
        return "partners/layout.html"
    if user.account_id:
        return "portal/layout.html"
    return "accounts/plain_layout.html"


def _page(request: HttpRequest, *, error: DomainError | None = None, codes=None, status: int = 200) -> HttpResponse:
    user = request.user
    pending = two_factor.pending_authenticator(user)
    context = {
        "active_nav": "two_factor",
        "layout": _layout(user),
        "enabled": two_factor.has_two_factor(user),
        "required": two_factor.two_factor_required(user),
        "pending": pending,
        "qr_svg": mark_safe(_qr_svg(pending.config_url)) if pending else "",  # drawn by qrcode from our URL
        "secret": two_factor.secret_for_display(pending) if pending else "",
        "codes_left": two_factor.recovery_codes_left(user),
        "recovery_codes": codes,
        "error": error.message if error else None,
        "error_action": request.POST.get("action") if error else None,
    }
    return render(request, "accounts/two_factor.html", context, status=status)


@never_cache  # recovery codes are shown in this answer
@login_required
@require_http_methods(["GET", "POST"])
def two_factor_settings(request: HttpRequest) -> HttpResponse:
    """The user's own second factor only: no device id is ever taken from the request."""
    if request.method == "GET":
        return _page(request)
    user, ip = request.user, client_ip(request)
    action = request.POST.get("action", "")
    code = request.POST.get("code", "")[:CODE_MAX_LENGTH]
    try:
        if action == "start":
            two_factor.start_authenticator_setup(user=user)
        elif action == "cancel":
            two_factor.cancel_authenticator_setup(user=user)
        elif action == "confirm":
            codes = two_factor.confirm_authenticator(user=user, token=code, ip=ip)
            # The code just entered proves the second factor: this session counts as verified.
            otp_login(request, two_factor.confirmed_authenticator(user))
            messages.success(request, "Two-factor sign-in is on.")
            return _page(request, codes=codes.codes)
        elif action == "regenerate":
            codes = two_factor.regenerate_recovery_codes(user=user, token=code, ip=ip)
            messages.success(request, "New recovery codes made; the old ones no longer work.")
            return _page(request, codes=codes.codes)
        elif action == "disable":
            two_factor.disable_two_factor(user=user, token=code, ip=ip)
            messages.success(request, "Two-factor sign-in is off.")
        else:
            return _page(request, status=400)
    except DomainError as failure:
        return _page(request, error=failure, status=failure.http_status)
    return redirect("two_factor")
