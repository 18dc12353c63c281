from django.contrib import admin
from django.urls import path

from fiscobridge.api.api import api
from fiscobridge.portal import views as portal_views

urlpatterns = [
    path("", portal_views.home, name="home"),
    path("healthz", portal_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]
