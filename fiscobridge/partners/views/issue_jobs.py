"""A large batch's progress (polled by htmx) and its codes' one download (partners/large_batches.py)."""

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from fiscobridge.core.errors import NotFound
from fiscobridge.partners.large_batches import CodesGone, get_job_for_partner, take_codes
from fiscobridge.partners.views.export import BOM
from fiscobridge.web.access import partner_page


@never_cache
@require_GET
@partner_page
def issue_job(request, partner, job_id: int):
    try:
        job = get_job_for_partner(partner, job_id)
    except NotFound:
        raise Http404 from None
    context = {"active_nav": "issue", "inner": "partners/issue/_job.html", "job": job}
    template = "partners/issue/_job.html" if request.htmx else "partners/issue.html"
    return render(request, template, context)


@require_POST
@partner_page
@sensitive_variables("text")
def issue_job_codes(request, partner, job_id: int):
    """The CSV of the codes, once (a POST: no prefetch or crawler can spend it)."""
    try:
        job, text = take_codes(partner=partner, job_id=job_id, actor=request.user)
    except NotFound:
        raise Http404 from None
    except CodesGone as error:
        job = get_job_for_partner(partner, job_id)
        context = {"active_nav": "issue", "inner": "partners/issue/_codes_gone.html", "job": job, "error": error}
        return render(request, "partners/issue.html", context, status=error.http_status)
    excel = request.POST.get("excel") == "1"
    response = HttpResponse((BOM if excel else "") + text, content_type="text/csv; charset=utf-8")
    name = f"fiscobridge-batch-{job.batch_id}-codes{'-excel' if excel else ''}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    add_never_cache_headers(response)
    return response
