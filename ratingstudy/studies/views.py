"""Rater-facing pages. Every URL starts with the rater's invitation token; nothing here needs a login.

Views stay thin: they resolve the rater (404 for an unknown token, a polite
refusal for a revoked link or a closed study), call one selector or service,
and render or redirect (POST, then redirect, so refresh and back never resubmit).

One request per answer: the trial page's script posts the answer with the
:data:`FRAGMENT_HEADER` and gets the next trial's page body back in the same
response (or, when the next step is not a trial, its address in
:data:`LOCATION_HEADER`). The plain form post, without the script, keeps the
post-then-redirect. An answer costs four SQL queries: the rater, the session
with its trials, the insert, and marking the next trial shown.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ratingstudy.errors import ApplicationError
from ratingstudy.results.services import schedule_results_refresh
from ratingstudy.studies import colour_screen, rendering
from ratingstudy.studies.forms import AnswerForm, ProfileForm
from ratingstudy.studies.models import (
    FIXATION_MS,
    QUALITY_LABELS,
    SUBTYPES,
    Rater,
    Study,
    Trial,
)
from ratingstudy.studies.selectors import (
    InvitationRefused,
    SessionState,
    practice_feedback,
    rater_colour_plates,
    rater_get,
    rater_needs_consent,
    session_state,
    trial_for_image,
)
from ratingstudy.studies.services import (
    AlreadyAnswered,
    rater_colour_screen,
    rater_consent,
    rater_profile_update,
    rater_qualification_evaluate,
    rater_withdraw,
    rating_submit,
    session_complete,
    session_start,
    trial_image_serve,
    trial_mark_shown,
    trial_window_closes,
)

RaterView = Callable[..., HttpResponse]
#: Keys of the confidence buttons (1-5 belong to quality; Z X C sit under the R and F of the real/fake answer).
CONFIDENCE_KEYS = {1: "z", 2: "x", 3: "c"}
#: What the page's script measures and sends with each answer (see ``Response``).
BROWSER_MEASURES = ("client_ms", "onscreen_ms", "paint_ms", "zoom_max", "zoomed_ms")
#: Sent by the trial page's script with an answer: reply with the next trial's page body, not a redirect.
FRAGMENT_HEADER = "X-Rating-Fragment"
#: In a fragment reply, where to go instead when the next step is not a trial (feedback, thank-you page).
LOCATION_HEADER = "X-Rating-Location"


def rater_view(view: RaterView) -> RaterView:
    """Resolve ``token`` to a usable rater, or answer with a polite refusal page (403).

    No rater page may be cached: the back button then asks the server, which
    answers with the current trial. (Images set their own caching: see :func:`image`.)
    Rater pages send no Referer (``Referrer-Policy: no-referrer``: the token is in their
    URL), so browsers send ``Origin: null`` with their form posts, which Django's CSRF
    check refuses. They need no CSRF protection: a forged request must name the rater's
    unguessable 256-bit token, and whoever knows it can act as the rater anyway; raters
    have no session or cookie for another site to ride on.
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, token: str, **kwargs: str) -> HttpResponse:
        try:
            rater = rater_get(token=token)
        except InvitationRefused as exc:
            return _rater_headers(_refused(request, exc))
        return _rater_headers(view(request, rater, **kwargs))

    return wrapper


def _refused(request: HttpRequest, exc: InvitationRefused) -> HttpResponse:
    return render(request, "studies/refused.html", {"message": exc.message}, status=403)


def _rater_headers(response: HttpResponse) -> HttpResponse:
    """What every response under a rater's URL carries: no caching unless it says otherwise, no Referer."""
    if not response.has_header("Cache-Control"):
        add_never_cache_headers(response)
    response["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
    return response


def _wants_fragment(request: HttpRequest) -> bool:
    return request.headers.get(FRAGMENT_HEADER) == "1"


def _go(request: HttpRequest, url_name: str, **kwargs: str) -> HttpResponse:
    """Redirect; a script's fragment request gets the address in :data:`LOCATION_HEADER` instead."""
    url = reverse(url_name, kwargs=kwargs)
    if not _wants_fragment(request):
        return redirect(url)
    response = HttpResponse(status=204)
    response[LOCATION_HEADER] = url
    return response


def _not_ready(request: HttpRequest) -> HttpResponse:
    message = "This study is not ready yet. Please try again later or contact the study team."
    return render(request, "studies/refused.html", {"message": message}, status=503)


@require_http_methods(["GET", "POST"])
@rater_view
def invitation(request: HttpRequest, rater: Rater) -> HttpResponse:
    """Welcome page: instructions, consent and the short profile; returning raters go straight on."""
    if rater.has_profile:
        return redirect("studies:trial", token=rater.token)
    form = ProfileForm(request.POST or None, study=rater.study)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            rater_profile_update(
                rater=rater,
                role=data["role"],
                years_experience=data["years_experience"],
                specialty=data["specialty"],
                consented=data.get("consent", False),
            )
            session_start(rater=rater, user_agent=request.headers.get("User-Agent", ""))
        except ApplicationError:
            return _not_ready(request)
        return redirect("studies:trial", token=rater.token)
    return render(request, "studies/welcome.html", {"rater": rater, "study": rater.study, "form": form})


def _stages(rater: Rater, trial: Trial, *, answering: bool, next_token: str | None) -> list[dict]:
    """What each viewer needs: its image URL, the canvas, timing (when answering), the next image to preload.

    One stage for a single-image trial; two (left, right) for a 2AFC pair. Untimed studies preload
    the next trial's images (from the trial page and from the practice feedback); a timed study never
    does, since a fetch opens the trial's viewing window.
    """
    study: Study = rater.study
    closes = trial_window_closes(trial=trial)
    if study.is_timed:
        next_token = None
    sides = ("left", "right") if trial.render_right else ("",)
    stages = []
    for side in sides:
        url_name = "studies:image_right" if side == "right" else "studies:image"
        kwargs = {"token": rater.token}
        stages.append(
            {
                "dom_id": f"stage-{side}" if side else "stage",
                "side": side,
                "image_url": reverse(url_name, kwargs={**kwargs, "trial_token": trial.token}),
                "next_image_url": reverse(url_name, kwargs={**kwargs, "trial_token": next_token}) if next_token else "",
                "width": study.canvas_width,
                "height": study.canvas_height,
                "exposure_ms": (trial.exposure_ms or study.exposure_ms) if answering and study.is_timed else None,
                "fixation_ms": FIXATION_MS,
                "window_closed": answering and closes is not None and timezone.now() > closes,
            }
        )
    return stages


def _confidence_choices(study: Study) -> list[tuple[int, str, str]]:
    """(value, label, key): Z X C for three levels (1-5 may be the quality keys), digits for five or six."""
    keys = CONFIDENCE_KEYS if study.confidence_levels == 3 else {v: str(v) for v in range(1, 7)}
    return [(value, text, keys[value]) for value, text in enumerate(study.confidence_labels, start=1)]


def _subtype_choices() -> list[tuple[str, list[tuple[str, str, str]]]]:
    return [
        (group, [(value, value.replace("_", " ").capitalize(), str(i)) for i, value in enumerate(values, start=1)])
        for group, values in SUBTYPES.items()
    ]


def _render_trial(
    request: HttpRequest, rater: Rater, state: SessionState, trial: Trial, form: AnswerForm, status: int = 200
) -> HttpResponse:
    """The trial page, or only its body (``studies/_trial_body.html``) for the page's script."""
    study: Study = rater.study
    context = {
        "rater": rater,
        "study": study,
        "trial": trial,
        "stages": _stages(rater, trial, answering=True, next_token=state.token_after(trial)),
        "form": form,
        "progress": state.progress(),
        "quality_labels": QUALITY_LABELS.items(),
        "confidence_labels": _confidence_choices(study),
        "subtype_choices": _subtype_choices(),
        "timing_fields": BROWSER_MEASURES,
    }
    template = "studies/_trial_body.html" if _wants_fragment(request) else "studies/trial.html"
    response = render(request, template, context, status=status)
    response["Vary"] = FRAGMENT_HEADER
    return response


@require_GET
@rater_view
def trial(request: HttpRequest, rater: Rater) -> HttpResponse:
    """The next unanswered trial of the rater's session (so reopening the link resumes)."""
    if not rater.has_profile:
        return redirect("studies:invitation", token=rater.token)
    if rater_needs_consent(rater=rater):
        return redirect("studies:consent", token=rater.token)
    if rater.screened_out:
        return render(request, "studies/screened.html", {"rater": rater, "study": rater.study})
    if rater.study.colour_screen and rater.colour_screen_score is None:
        return redirect("studies:screen", token=rater.token)
    state = session_state(rater=rater)
    if state is None:
        try:
            rater.session = session_start(rater=rater, user_agent=request.headers.get("User-Agent", ""))
        except ApplicationError:
            return _not_ready(request)
        state = session_state(rater=rater)
    return _next_trial(request, rater, state)


def _next_trial(request: HttpRequest, rater: Rater, state: SessionState) -> HttpResponse:
    """Show the session's first unanswered trial (marked as sent now), or go to the thank-you page."""
    current = state.next_trial()
    if current is None:
        session_complete(session=state.session)  # mends a completion missed by two racing last answers
        return _go(request, "studies:complete", token=rater.token)
    trial_mark_shown(trial=current)
    return _render_trial(request, rater, state, current, AnswerForm(study=rater.study))


@require_POST
@rater_view
def answer(request: HttpRequest, rater: Rater, trial_token: str) -> HttpResponse:
    """Store the answer to one trial, then go to practice feedback or the next trial.

    From the page's script (:data:`FRAGMENT_HEADER`) the next trial comes back in this response;
    a plain form post is redirected to it.
    """
    if rater_needs_consent(rater=rater):  # the consent text changed while the trial was open
        return _go(request, "studies:consent", token=rater.token)
    state = session_state(rater=rater)
    if state is None:
        raise Http404("unknown trial")
    current = state.trial(trial_token)
    form = AnswerForm(request.POST, study=rater.study)
    if not form.is_valid():
        return _render_trial(request, rater, state, current, form, status=400)
    try:
        rating_submit(trial=current, answer=form.answer(), last_open=not state.others_open(current))
    except AlreadyAnswered:  # a resent answer (network retry, double click): the first one stands
        state.mark_answered(current)
        return _next_trial(request, rater, state) if _wants_fragment(request) else redirect("studies:trial", token=rater.token)
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _render_trial(request, rater, state, current, form, status=400)
    state.mark_answered(current)
    schedule_results_refresh(study_id=rater.study_id)  # Redis only: the results page recomputes soon
    if current.is_qualification and rater_qualification_evaluate(rater=rater) is False:
        return _go(request, "studies:trial", token=rater.token)  # the screened-out page
    if current.is_practice:
        return _go(request, "studies:feedback", token=rater.token, trial_token=current.token)
    if not _wants_fragment(request):
        return redirect("studies:trial", token=rater.token)
    return _next_trial(request, rater, state)


@require_GET
@rater_view
def feedback(request: HttpRequest, rater: Rater, trial_token: str) -> HttpResponse:
    """After a practice trial: whether the image was real or generated."""
    state = session_state(rater=rater)
    if state is None:
        raise Http404("unknown trial")
    current = state.trial(trial_token)
    context = {
        "rater": rater,
        "study": rater.study,
        "trial": current,
        "feedback": practice_feedback(trial=current),
        "stages": _stages(rater, current, answering=False, next_token=state.token_after(current)),
        "progress": state.progress(),
        "quality_labels": QUALITY_LABELS,
    }
    return render(request, "studies/feedback.html", context)


def _image_response(name: str, *, timed: bool) -> HttpResponse:
    """The stored bytes ``name`` with the study's one set of headers.

    With ``RATER_IMAGE_ACCEL_PREFIX`` set (a deployment behind nginx, see README), Python sends only
    an ``X-Accel-Redirect`` to the file and nginx sends the bytes; on local disk otherwise, a file
    response that the WSGI server may send with ``sendfile``; from object storage, the bytes.
    """
    prefix = settings.RATER_IMAGE_ACCEL_PREFIX
    if prefix:
        response = HttpResponse(content_type=rendering.SERVED_CONTENT_TYPE)
        response["X-Accel-Redirect"] = prefix + name
    else:
        try:
            path = default_storage.path(name)
        except NotImplementedError:  # object storage: no local path
            with default_storage.open(name, "rb") as stored:
                response = HttpResponse(stored.read(), content_type=rendering.SERVED_CONTENT_TYPE)
        else:
            try:
                response = FileResponse(open(path, "rb"), content_type=rendering.SERVED_CONTENT_TYPE)  # noqa: SIM115 (the response closes it)
            except FileNotFoundError as exc:
                raise Http404("the image is not rendered") from exc
    for header, value in rendering.SERVED_HEADERS.items():
        response[header] = value
    if timed:
        response["Cache-Control"] = "no-store"
    else:
        patch_cache_control(response, private=True, max_age=3600)
    return response


def _serve_image(request: HttpRequest, token: str, trial_token: str, side: str) -> HttpResponse:
    """One query (:func:`trial_for_image`), then the render or the mask (:func:`trial_image_serve`)."""
    try:
        current = trial_for_image(token=token, trial_token=trial_token)
    except InvitationRefused as exc:  # the same polite page as every rater URL
        return _rater_headers(_refused(request, exc))
    try:
        name = trial_image_serve(trial=current, answered=current.answered, side=side)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    return _rater_headers(_image_response(name, timed=current.session.study.is_timed))


@require_GET
def image(request: HttpRequest, token: str, trial_token: str) -> HttpResponse:
    """A trial's image (the left one of a 2AFC pair): pre-rendered bytes of one length, one set of headers,
    for every image of the study.

    A timed study's image is served only while the trial's viewing window is open (then the
    noise mask), and never cached; an untimed study's may be cached privately, so that the
    page can preload the next trial's image.
    """
    return _serve_image(request, token, trial_token, "left")


@require_GET
def image_right(request: HttpRequest, token: str, trial_token: str) -> HttpResponse:
    """The right image of a 2AFC pair, under the same rules as :func:`image`."""
    return _serve_image(request, token, trial_token, "right")


@require_http_methods(["GET", "POST"])
@rater_view
def consent(request: HttpRequest, rater: Rater) -> HttpResponse:
    """The study's consent text changed since the rater agreed: they agree again before the next trial."""
    if not rater_needs_consent(rater=rater):
        return redirect("studies:trial", token=rater.token)
    missing = request.method == "POST" and request.POST.get("consent") != "on"
    if request.method == "POST" and not missing:
        rater_consent(rater=rater)
        return redirect("studies:trial", token=rater.token)
    context = {"rater": rater, "study": rater.study, "missing": missing}
    return render(request, "studies/consent.html", context, status=400 if missing else 200)


@require_http_methods(["GET", "POST"])
@rater_view
def screen(request: HttpRequest, rater: Rater) -> HttpResponse:
    """The hue-discrimination screen (when the study asks for it), before the first trial."""
    if not rater.study.colour_screen or rater.colour_screen_score is not None:
        return redirect("studies:trial", token=rater.token)
    plates = rater_colour_plates(rater=rater)
    if request.method == "POST":
        answers = [_int_or_none(request.POST.get(f"plate_{i}")) for i in range(len(plates))]
        rater_colour_screen(rater=rater, answers=answers)
        return redirect("studies:trial", token=rater.token)
    context = {"rater": rater, "study": rater.study, "plates": plates, "pass_mark": colour_screen.PASS_MARK}
    return render(request, "studies/screen.html", context)


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@require_http_methods(["GET", "POST"])
@rater_view
def withdraw(request: HttpRequest, rater: Rater) -> HttpResponse:
    """Leave the study: a confirmation page, then the answers are deleted (or anonymised) at once."""
    study = rater.study
    if request.method == "POST":
        rater_withdraw(rater=rater)
        schedule_results_refresh(study_id=study.pk)
        return render(request, "studies/withdrawn.html", {"study": study})
    return render(request, "studies/withdraw.html", {"rater": rater, "study": study})


@require_GET
@rater_view
def complete(request: HttpRequest, rater: Rater) -> HttpResponse:
    """The thank-you page, once every trial is answered."""
    state = session_state(rater=rater)
    if state is None or not state.session.is_complete:
        return redirect("studies:trial", token=rater.token)
    return render(request, "studies/complete.html", {"rater": rater, "study": rater.study, "progress": state.progress()})
