from django.urls import path

from fiscobridge.partners import views

app_name = "partners"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("issue/", views.issue, name="issue"),
    path("keys/", views.keys, name="keys"),
    path("keys/table/", views.keys_table, name="keys_table"),
    path("keys/export.csv", views.export, name="export"),
    path("keys/<int:key_id>/", views.key_detail, name="key_detail"),
    path("keys/<int:key_id>/revoke/", views.revoke, name="revoke"),
    path("lookup/", views.lookup, name="lookup"),
    path("tokens/", views.api_tokens, name="api_tokens"),
    path("tokens/<int:token_id>/revoke/", views.revoke_token, name="revoke_token"),
]
