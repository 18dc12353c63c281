"""Where two-factor sign-in is required, a session without a verified second factor gets nowhere
but the set-up page and logging out.

Runs after django-otp's OTPMiddleware. Bearer-token API calls are not concerned: a token is its
own credential and never asks for a code (docs/two-factor.md).
"""

from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from fiscobridge.accounts import two_factor


def _open_paths() -> tuple[str, ...]:
    return (
        reverse("two_factor"),
        reverse("login"),
        reverse("login_verify"),
        reverse("logout"),
        reverse("admin:login"),
        reverse("admin:logout"),
        "/static/",
        reverse("healthz"),
    )


class TwoFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self._open = None

    def __call__(self, request):
        return self._refusal(request) or self.get_response(request)

    def _refusal(self, request) -> HttpResponse | None:
        if self._open is None:
            self._open = _open_paths()
        path = request.path
        if path.startswith(self._open):
            return None
        api = path.startswith("/api/")
        if api and request.headers.get("Authorization"):
            return None  # a bearer token: no session involved
        user = request.user
        if not user.is_authenticated or user.is_verified() or not two_factor.two_factor_required(user):
            return None
        if two_factor.has_two_factor(user):
            # Signed in without the code step (only a login form that skipped it could do that):
            # end the session and ask again, both steps.
            logout(request)
            return redirect_to_login(request.get_full_path())
        if api:
            return JsonResponse(
                {
                    "error": {
                        "code": "two_factor_required",
                        "message": "Set up two-factor sign-in in the portal before using the API from this session",
                        "details": {},
                    }
                },
                status=403,
            )
        if request.headers.get("HX-Request"):  # django-htmx runs later; an htmx swap follows this header
            return HttpResponse(status=204, headers={"HX-Redirect": reverse("two_factor")})
        return redirect("two_factor")
