from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from fiscobridge.api.api import api
from fiscobridge.web.password_reset import ThrottledPasswordResetView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("billing/", include("fiscobridge.billing.urls")),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("password_reset/", ThrottledPasswordResetView.as_view(), name="password_reset"),
    path("", include("django.contrib.auth.urls")),
    path("partner/", include("fiscobridge.partners.urls")),
    path("", include("fiscobridge.portal.urls")),
]

handler404 = "fiscobridge.portal.views.not_found"
handler500 = "fiscobridge.portal.views.server_error"
