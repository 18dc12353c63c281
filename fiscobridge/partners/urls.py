from django.urls import path

from fiscobridge.partners.views import (
    dashboard,
    export,
    issue,
    issue_jobs,
    key_detail,
    keys,
    lookup,
    settings,
    tokens,
    webhooks,
)

app_name = "partners"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("issue/", issue.issue, name="issue"),
    path("issue/jobs/<int:job_id>/", issue_jobs.issue_job, name="issue_job"),
    path("issue/jobs/<int:job_id>/codes.csv", issue_jobs.issue_job_codes, name="issue_job_codes"),
    path("keys/", keys.keys, name="keys"),
    path("keys/table/", keys.keys_table, name="keys_table"),
    path("keys/export.csv", export.export, name="export"),
    path("keys/<int:key_id>/", key_detail.key_detail, name="key_detail"),
    path("keys/<int:key_id>/revoke/", key_detail.revoke, name="revoke"),
    path("lookup/", lookup.lookup, name="lookup"),
    path("tokens/", tokens.api_tokens, name="api_tokens"),
    path("tokens/<int:token_id>/revoke/", tokens.revoke_token, name="revoke_token"),
    path("settings/", settings.settings_page, name="settings"),
    path("webhooks/", webhooks.webhooks, name="webhooks"),
    path("webhooks/<int:endpoint_id>/", webhooks.endpoint_detail, name="webhook_detail"),
    path("webhooks/<int:endpoint_id>/toggle/", webhooks.toggle_endpoint, name="webhook_toggle"),
    path("webhooks/<int:endpoint_id>/delete/", webhooks.remove_endpoint, name="webhook_delete"),
    path("webhooks/deliveries/<int:delivery_id>/resend/", webhooks.resend, name="webhook_resend"),
]
