"""Job endpoints for staff: JSON progress (polled by the admin page, needs ``jobs.view_job``)
and checkpoint download (an operator's action, needs ``jobs.operate_job``)."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404

from ratingstudy.jobs.models import Job
from ratingstudy.jobs.selectors import job_progress_payload


@staff_member_required
@permission_required("jobs.view_job", raise_exception=True)
def job_progress(request: HttpRequest, job_id: int) -> JsonResponse:
    job = get_object_or_404(Job.objects.select_related("output_image_set"), pk=job_id)
    return JsonResponse(job_progress_payload(job=job))


@staff_member_required
@permission_required("jobs.operate_job", raise_exception=True)
def job_checkpoint(request: HttpRequest, job_id: int) -> FileResponse:
    job = get_object_or_404(Job, pk=job_id)
    if not job.checkpoint or not default_storage.exists(job.checkpoint):
        raise Http404("this job has no stored checkpoint")
    return FileResponse(
        default_storage.open(job.checkpoint, "rb"),
        as_attachment=True,
        filename=f"job-{job.pk}-{job.checkpoint_sha256[:12]}.pt",
    )
