"""Study design, invitations and session overview for staff."""

from __future__ import annotations

import base64
import csv
import io
import json

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from ratingstudy.studies.models import DESIGN_FIELDS, Rater, Session, Study
from ratingstudy.studies.selectors import raters_needed, session_progress, studies_visible_to
from ratingstudy.studies.services import (
    design_changes_locked,
    design_problems_of,
    rater_reinstate,
    rater_reissue,
    rater_revoke,
    raters_create,
    study_canvas_resolve,
    study_new_version,
    study_render,
)
from ratingstudy.studies.tasks import TASK_OPTIONS, get_task, task_names


def issued_links_response(request: HttpRequest, *, title: str, raters: list[Rater]) -> TemplateResponse:
    """The one page that ever shows these raters' links: tokens are stored only as hashes.

    The CSV download is built into the page (a data: link), so the links never pass
    through the server again and are kept nowhere: leaving the page loses them, and
    re-issuing a link (Raters, action) makes a new one.
    """
    origin = request.build_absolute_uri("/").rstrip("/")
    rows = [(rater.pk, rater.note, origin + rater.get_absolute_url()) for rater in raters]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["rater_id", "note", "invitation_url"])
    writer.writerows(rows)
    context = {
        **admin.site.each_context(request),
        "title": title,
        "rows": rows,
        "csv_data_url": "data:text/csv;base64," + base64.b64encode(buffer.getvalue().encode()).decode(),
    }
    return TemplateResponse(request, "admin/studies/issued_links.html", context)


class StudyForm(forms.ModelForm):
    """Checks the design against the chosen image sets before anything is saved."""

    new_invitations = forms.IntegerField(
        min_value=0,
        max_value=500,
        initial=0,
        required=False,
        help_text="Create this many new invitation links when saving.",
    )

    class Meta:
        model = Study
        fields = [*DESIGN_FIELDS, "real_image_sets", "generated_image_sets", "practice_image_sets", "collaborators"]

    class Media:
        js = ["studies/design_form.js"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "task" in self.fields:  # the design form shows only the options of the chosen task
            self.fields["task"].widget.attrs["data-task-options"] = json.dumps(
                {name: list(get_task(name).options) for name in task_names()}
            )
            self.fields["task"].widget.attrs["data-all-options"] = json.dumps(list(TASK_OPTIONS))

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        concrete = {field.name for field in Study._meta.concrete_fields}
        candidate = Study(**{name: value for name, value in data.items() if name in concrete})
        groups = {
            "real": list(data.get("real_image_sets") or []),
            "generated": list(data.get("generated_image_sets") or []),
            "practice": list(data.get("practice_image_sets") or []),
        }
        locked = design_changes_locked(study=self.instance, changed=self.changed_data)
        if locked:
            raise forms.ValidationError(
                f"This study has answers, so its design is locked: {', '.join(locked)} cannot change. Use the "
                "action \"Copy as a new design version\" on the study list; the copy takes the change and new raters."
            )
        problems = design_problems_of(study=candidate, groups=groups)
        if problems:
            raise forms.ValidationError(problems)
        return data


class RaterInline(admin.TabularInline):
    model = Rater
    extra = 0
    can_delete = False
    fields = ["note", "token_issued_at", "role", "years_experience", "specialty", "revoked", "progress"]
    readonly_fields = ["token_issued_at", "role", "years_experience", "specialty", "progress"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rater]:
        return super().get_queryset(request).filter(is_audit=False)

    @admin.display(description="progress")
    def progress(self, rater: Rater) -> str:
        session = Session.objects.filter(rater=rater).first()
        if session is None:
            return "not started"
        progress = session_progress(session=session)
        return "complete" if session.is_complete else f"{progress.percent}%"


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    form = StudyForm
    list_display = ["name", "design_version", "is_open", "task", "images_per_rater", "rater_count", "completed_count", "created_at"]
    list_filter = ["is_open", "task"]
    search_fields = ["name"]
    filter_horizontal = ["real_image_sets", "generated_image_sets", "practice_image_sets", "collaborators"]
    readonly_fields = ["created_at", "pool_summary", "owner", "design_version", "previous_version", "consent_version"]
    inlines = [RaterInline]
    actions = ["open_studies", "close_studies", "new_design_version"]
    fieldsets = [
        (None, {"fields": ["name", "is_open", "description", "created_at", "design_version", "previous_version"]}),
        ("Access", {"fields": ["owner", "collaborators"]}),
        ("Images", {"fields": ["real_image_sets", "generated_image_sets", "practice_image_sets", "pool_summary"]}),
        (
            "Presentation",
            {
                "fields": ["canvas_width", "canvas_height", "fit", "jpeg_quality"],
                "description": "Real and generated images always get the same geometry; a design under which they "
                "would not is refused. Every image is rendered when the study is saved open.",
            },
        ),
        (
            "Design",
            {
                "fields": [
                    "task",
                    "ask_confidence",
                    "confidence_levels",
                    "ask_subtype",
                    "noninferiority_margin",
                    "staircase_ladder",
                    "staircase_down",
                    "staircase_up",
                    "images_per_rater",
                    "balance",
                    "raters_per_image",
                    "practice_trials",
                    "practice_holdout",
                    "corrupted_checks",
                    "repeat_checks",
                    "exclude_after_failed_checks",
                    "exclude_failed_share",
                    "qualification_trials",
                    "qualification_pass",
                    "colour_screen",
                    "exposure_ms",
                    "seed",
                ]
            },
        ),
        ("What raters read", {"fields": ["instructions", "consent_text", "consent_version", "withdrawal"]}),
        ("Invitations", {"fields": ["new_invitations"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Study]:
        return (
            super()
            .get_queryset(request)
            .filter(pk__in=studies_visible_to(user=request.user).values("pk"))
            .annotate(
                _raters=Count("raters", distinct=True),
                _completed=Count("sessions", filter=Q(sessions__completed_at__isnull=False), distinct=True),
            )
        )

    @admin.display(description="raters", ordering="_raters")
    def rater_count(self, study: Study) -> int:
        return study._raters

    @admin.display(description="completed", ordering="_completed")
    def completed_count(self, study: Study) -> int:
        return study._completed

    @admin.display(description="pool")
    def pool_summary(self, study: Study) -> str:
        if not study.pk:
            return "Save to see the pool."
        real = sum(s.images.count() for s in study.real_image_sets.all())
        generated = sum(s.images.count() for s in study.generated_image_sets.all())
        return (
            f"{real} real and {generated} generated images; {raters_needed(study=study)} raters are needed "
            f"for each image to be seen by {study.raters_per_image}."
        )

    def save_model(self, request: HttpRequest, obj: Study, form: StudyForm, change: bool) -> None:
        if not change:
            obj.owner = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: StudyForm, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        study_canvas_resolve(study=form.instance)
        if form.instance.is_open:
            made = study_render(study=form.instance)
            if made:
                messages.info(request, f"Rendered {made} image(s) for raters.")
        count = form.cleaned_data.get("new_invitations") or 0
        if count:
            request._issued_raters = raters_create(study=form.instance, count=count)

    def _issued_or(self, request: HttpRequest, response: HttpResponse, study: Study) -> HttpResponse:
        raters = getattr(request, "_issued_raters", None)
        if not raters:
            return response
        return issued_links_response(request, title=f"{len(raters)} new invitation link(s) for {study}", raters=raters)

    def response_add(self, request: HttpRequest, obj: Study, post_url_continue: str | None = None) -> HttpResponse:
        return self._issued_or(request, super().response_add(request, obj, post_url_continue), obj)

    def response_change(self, request: HttpRequest, obj: Study) -> HttpResponse:
        return self._issued_or(request, super().response_change(request, obj), obj)

    @admin.action(description="Copy as a new design version (editable, closed, no raters)")
    def new_design_version(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            copy = study_new_version(study=study, owner=request.user)
            messages.success(request, f"Created {copy.name!r} (design version {copy.design_version}).")

    @admin.action(description="Open the selected studies to raters")
    def open_studies(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            study_canvas_resolve(study=study)
            study_render(study=study)
        queryset.update(is_open=True)

    @admin.action(description="Close the selected studies (links are refused politely)")
    def close_studies(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        queryset.update(is_open=False)


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):
    list_display = ["pk", "study", "note", "role", "years_experience", "revoked", "created_at"]
    list_filter = [("study", admin.RelatedOnlyFieldListFilter), "revoked", "role"]
    search_fields = ["note", "specialty"]
    readonly_fields = [
        "token_issued_at",
        "role",
        "years_experience",
        "specialty",
        "consented_at",
        "profile_completed_at",
        "revoked",
        "revoked_at",
        "created_at",
    ]
    actions = ["reissue", "revoke", "reinstate"]

    def get_fields(self, request: HttpRequest, obj: Rater | None = None) -> list:
        return ["study", "note"] if obj is None else ["study", "note", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Rater | None = None) -> list:
        return [] if obj is None else ["study", *self.readonly_fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rater]:
        visible = studies_visible_to(user=request.user).values("pk")
        return super().get_queryset(request).filter(is_audit=False, study__in=visible)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "study":
            kwargs["queryset"] = studies_visible_to(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def response_add(self, request: HttpRequest, obj: Rater, post_url_continue: str | None = None) -> HttpResponse:
        return issued_links_response(request, title=f"New invitation link for {obj.study}", raters=[obj])

    @admin.action(description="Re-issue the selected invitation links (the old links stop working)")
    def reissue(self, request: HttpRequest, queryset: QuerySet[Rater]) -> HttpResponse:
        raters = [rater_reissue(rater=rater) for rater in queryset]
        return issued_links_response(request, title=f"{len(raters)} re-issued invitation link(s)", raters=raters)

    @admin.action(description="Revoke the selected invitation links")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Rater]) -> None:
        for rater in queryset:
            rater_revoke(rater=rater)
        messages.success(request, f"Revoked {queryset.count()} link(s).")

    @admin.action(description="Reinstate the selected invitation links")
    def reinstate(self, request: HttpRequest, queryset: QuerySet[Rater]) -> None:
        for rater in queryset:
            rater_reinstate(rater=rater)
        messages.success(request, f"Reinstated {queryset.count()} link(s).")


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["pk", "study", "rater", "started_at", "completed_at", "answered"]
    list_filter = [("study", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["rater", "study", "seed", "user_agent", "started_at", "completed_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Session]:
        return super().get_queryset(request).filter(study__in=studies_visible_to(user=request.user).values("pk"))

    @admin.display(description="answered")
    def answered(self, session: Session) -> str:
        progress = session_progress(session=session)
        return f"{progress.practice_done + progress.main_done} / {progress.practice_total + progress.main_total}"
