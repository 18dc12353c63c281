from django.contrib import admin
from django.urls import include, path

from fiscobridge.api.api import api
from fiscobridge.api.jwks import jwks_view
from fiscobridge.web import two_factor
from fiscobridge.web.metrics import metrics_view
from fiscobridge.web.password_reset import ThrottledPasswordResetView

urlpatterns = [
    # The admin signs in through the same two steps as the portals (password, then code).
    path("admin/login/", two_factor.LoginView.as_view(redirect_authenticated_user=False), name="admin_login"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("metrics", metrics_view, name="metrics"),
    # The public keys of the offline leases (SPEC 9.1, docs/leases.md).
    path(".well-known/jwks.json", jwks_view, name="jwks"),
    path("billing/", include("fiscobridge.billing.urls")),
    path("login/", two_factor.LoginView.as_view(), name="login"),
    path("login/verify/", two_factor.login_verify, name="login_verify"),
    path("account/two-factor/", two_factor.two_factor_settings, name="two_factor"),
    path("password_reset/", ThrottledPasswordResetView.as_view(), name="password_reset"),
    path("", include("django.contrib.auth.urls")),
    path("partner/", include("fiscobridge.partners.urls")),
    path("", include("fiscobridge.portal.urls")),
]

handler404 = "fiscobridge.portal.views.not_found"
handler500 = "fiscobridge.portal.views.server_error"
