"""Writes for rating studies: invitations, profiles, sessions and responses."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ratingstudy.catalog.models import ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.studies import colour_screen, rendering, staircase
from ratingstudy.studies.models import (
    FIXATION_MS,
    LOCKED_FIELDS,
    SUBTYPES,
    WINDOW_GRACE_MS,
    ConsentRecord,
    Rater,
    Render,
    Response,
    Session,
    Study,
    Trial,
    Withdrawal,
)
from ratingstudy.studies.sampling import design_problems, session_seed, trials_draw
from ratingstudy.studies.selectors import (
    rater_colour_plates,
    session_of_rater,
    sets_image_sizes,
    sets_pools,
    study_all_images,
    study_exposure_counts,
    study_pools,
    study_set_groups,
)


class DesignInvalid(ApplicationError):
    """A study design that cannot run; ``extra["problems"]`` lists every problem, one string each."""

    def __init__(self, study_name: str, problems: list[str]) -> None:
        super().__init__(
            f"study {study_name!r} cannot run:\n  " + "\n  ".join(problems), extra={"problems": problems}
        )
        self.problems = problems


class StudyNotRendered(ApplicationError):
    """Some of a study's images have no render for its presentation: raters must wait for ``study_render``."""


class AlreadyAnswered(ApplicationError):
    """The trial has its response already (double click, refresh, back button); nothing was written."""


@dataclass(frozen=True)
class Answer:
    """A rater's answer to one trial, as it arrives from the browser (validated by the form)."""

    judged_real: bool | None
    confidence: int | None
    quality: int | None
    client_ms: int | None
    choice: str = ""
    diagnosis: str = ""
    subtype: str = ""
    marks: list = field(default_factory=list)
    onscreen_ms: int | None = None
    paint_ms: int | None = None
    zoom_max: float | None = None
    zoomed_ms: int | None = None


def study_create(
    *,
    name: str,
    instructions: str,
    real_image_sets: Iterable[ImageSet],
    generated_image_sets: Iterable[ImageSet],
    practice_image_sets: Iterable[ImageSet] = (),
    **design: object,
) -> Study:
    """Create a study from image sets and design fields (see :class:`Study`); refused if it cannot run.

    A blank canvas is derived from the images (the largest width and height). An open
    study is rendered at once (:func:`study_render`). Raises :class:`DesignInvalid`
    listing every problem; nothing is created then.
    """
    m2m = {"real_image_sets", "generated_image_sets", "practice_image_sets"}
    unknown = set(design) - {f.name for f in Study._meta.concrete_fields} - m2m
    if unknown:
        raise DesignInvalid(name, [f"unknown study field: {field}" for field in sorted(unknown)])
    with transaction.atomic():
        study = Study(name=name, instructions=instructions, **design)
        try:
            study.full_clean()
        except ValidationError as exc:
            raise DesignInvalid(
                name, [f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()]
            ) from exc
        study.save()
        study.real_image_sets.set(list(real_image_sets))
        study.generated_image_sets.set(list(generated_image_sets))
        study.practice_image_sets.set(list(practice_image_sets))
        study_canvas_resolve(study=study)
        study_check(study=study)
        if study.is_open:
            study_render(study=study)
    return study


def canvas_derive(sizes: dict[str, set[tuple[int, int]]]) -> tuple[int, int] | None:
    """The default canvas: the largest width and the largest height among the images (None without images)."""
    every = [size for group in sizes.values() for size in group]
    if not every:
        return None
    return max(w for w, _ in every), max(h for _, h in every)


def study_canvas_resolve(*, study: Study) -> Study:
    """Fill a blank canvas from the images (see :func:`canvas_derive`)."""
    if study.canvas_width is not None and study.canvas_height is not None:
        return study
    derived = canvas_derive(sets_image_sizes(groups=study_set_groups(study=study)))
    if derived is None:
        raise DesignInvalid(study.name, ["the study has no images to derive its canvas from"])
    study.canvas_width = study.canvas_width or derived[0]
    study.canvas_height = study.canvas_height or derived[1]
    study.save(update_fields=["canvas_width", "canvas_height"])
    return study


def raters_create(*, study: Study, count: int, note: str = "") -> list[Rater]:
    """Create ``count`` invitations, each with its own 256-bit token.

    Only the tokens' hashes are stored: the returned raters carry their plain ``token``
    (and so their link) for the caller to show or send once; it cannot be recovered later.
    """
    if count < 1:
        raise ApplicationError(f"count must be at least 1, got {count}")
    return [Rater.objects.create(study=study, note=note) for _ in range(count)]


def rater_reissue(*, rater: Rater) -> Rater:
    """Give ``rater`` a new invitation token: the old link stops working, the answers stay theirs.

    The returned rater carries the new plain token (see :func:`raters_create`).
    """
    rater.issue_token()
    rater.save(update_fields=["token_hash", "token_issued_at"])
    return rater


def rater_revoke(*, rater: Rater) -> Rater:
    """Withdraw an invitation: the link is refused from now on; answers already given are kept."""
    if not rater.revoked:
        rater.revoked = True
        rater.revoked_at = timezone.now()
        rater.save(update_fields=["revoked", "revoked_at"])
    return rater


def rater_reinstate(*, rater: Rater) -> Rater:
    """Undo :func:`rater_revoke`."""
    if rater.revoked:
        rater.revoked = False
        rater.revoked_at = None
        rater.save(update_fields=["revoked", "revoked_at"])
    return rater


def rater_profile_update(
    *, rater: Rater, role: str, years_experience: int, specialty: str, consented: bool
) -> Rater:
    """Record the short profile asked on the first visit (and consent when the study asks for it)."""
    if role not in Rater.Role.values:
        raise ApplicationError(f"role must be one of {', '.join(Rater.Role.values)}, got {role!r}")
    if not 0 <= years_experience <= 70:
        raise ApplicationError(f"years of experience must be between 0 and 70, got {years_experience}")
    if rater.study.consent_text and not consented:
        raise ApplicationError("Please confirm that you agree to take part before starting.")
    now = timezone.now()
    with transaction.atomic():
        rater.role = role
        rater.years_experience = years_experience
        rater.specialty = specialty.strip()
        rater.consented_at = now if consented else None
        rater.profile_completed_at = now
        rater.save(update_fields=["role", "years_experience", "specialty", "consented_at", "profile_completed_at"])
        if consented and rater.study.consent_text:
            rater_consent(rater=rater, now=now)
    return rater


def rater_consent(*, rater: Rater, now: datetime | None = None) -> ConsentRecord:
    """Record that ``rater`` agrees to the study's current consent text (its version and sha256)."""
    study = rater.study
    record, _ = ConsentRecord.objects.get_or_create(
        rater=rater,
        version=study.consent_version,
        defaults={"text_sha256": study.consent_sha256, "agreed_at": now or timezone.now()},
    )
    changed = []
    if rater.consented_at is None:
        rater.consented_at = record.agreed_at
        changed.append("consented_at")
    if rater.consent_version is None or rater.consent_version < study.consent_version:
        rater.consent_version = study.consent_version
        changed.append("consent_version")
    if changed:
        rater.save(update_fields=changed)
    return record


def rater_withdraw(*, rater: Rater) -> Withdrawal:
    """The rater leaves the study: their answers are deleted (or kept without their profile, if the study
    says so), their link is refused from now on, and a record without personal data says what was done."""
    study = rater.study
    with transaction.atomic():
        responses = Response.objects.filter(trial__session__rater=rater)
        count = responses.count()
        variants = list(
            Trial.objects.filter(session__rater=rater).exclude(variant="").values_list("render", flat=True)
        )
        record = Withdrawal.objects.create(
            study=study, mode=study.withdrawal, responses=count, design_version=study.design_version
        )
        if study.withdrawal == Study.Withdrawal.DELETE:
            rater.delete()  # the session, its trials and answers, and the consent records go with it
        else:
            Session.objects.filter(rater=rater).update(user_agent="")
            now = timezone.now()
            Rater.objects.filter(pk=rater.pk).update(
                note="", role="", years_experience=None, specialty="", revoked=True, revoked_at=now, withdrawn_at=now
            )
            variants = []  # the kept answers still name their trials' images
    for name in variants:
        transaction.on_commit(lambda name=name: default_storage.delete(name))
    return record


def study_new_version(*, study: Study, owner=None) -> Study:
    """A copy of ``study`` as its next design version: same design, image sets and collaborators,
    closed, with no raters, ready to be edited (the original's design stays locked)."""
    latest = study
    while (newer := latest.next_versions.order_by("-design_version").first()) is not None:
        latest = newer
    version = latest.design_version + 1
    base = re.sub(r" \(v\d+\)$", "", study.name)
    with transaction.atomic():
        copy = Study.objects.get(pk=study.pk)
        copy.pk = None
        copy.name = f"{base} (v{version})"
        copy.design_version = version
        copy.previous_version = study
        copy.is_open = False
        copy.owner = owner or study.owner
        copy.created_at = timezone.now()
        copy.save()
        for field in ("real_image_sets", "generated_image_sets", "practice_image_sets", "collaborators"):
            getattr(copy, field).set(getattr(study, field).all())
    return copy


def design_changes_locked(*, study: Study, changed: Iterable[str]) -> list[str]:
    """The locked fields among ``changed``, when the study has data (empty when the change may go ahead)."""
    locked = [name for name in changed if name in LOCKED_FIELDS]
    if not locked or study.pk is None or not study.has_responses:
        return []
    return locked


def design_problems_of(*, study: Study, groups: dict[str, list[ImageSet]]) -> list[str]:
    """Everything that stops a design from running: set roles, pool sizes and geometry cues.

    ``study`` may be unsaved (the admin form checks before saving); ``groups`` holds its
    image sets by role (``real``, ``generated``, ``practice``). A blank canvas is checked as
    it will be derived.
    """
    problems = [
        f"image set {s.name!r} is listed as real but holds generated images"
        for s in groups["real"]
        if s.kind != ImageSet.Kind.REAL
    ] + [
        f"image set {s.name!r} is listed as generated but holds real images"
        for s in groups["generated"]
        if s.kind != ImageSet.Kind.GENERATED
    ]
    analysed = {s.pk for s in groups["real"] + groups["generated"]}
    problems += [
        f"image set {s.name!r} cannot be both analysed and a practice set (practice images are never analysed)"
        for s in groups["practice"]
        if s.pk in analysed
    ]
    pool, practice = sets_pools(
        analysed_sets=groups["real"] + groups["generated"],
        practice_sets=groups["practice"],
        practice_trials=study.practice_trials,
        practice_holdout=study.practice_holdout,
        seed=study.seed,
    )
    problems += design_problems(
        design=study.design,
        n_real=sum(p.is_real for p in pool),
        n_generated=sum(not p.is_real for p in pool),
        n_practice=len(practice),
        n_practice_real=sum(p.is_real for p in practice),
    )
    problems += task_problems(study=study, pool=pool + practice)
    sizes = sets_image_sizes(groups=groups)
    derived = canvas_derive(sizes)
    if derived is not None:
        presentation = rendering.Presentation(
            width=study.canvas_width or derived[0],
            height=study.canvas_height or derived[1],
            fit=study.fit,
            jpeg_quality=study.jpeg_quality,
        )
        problems += rendering.geometry_problems(sizes=sizes, presentation=presentation)
    return problems


def task_problems(*, study: Study, pool: list) -> list[str]:
    """What the chosen task needs of the design and the images (``pool``: analysed and practice images)."""
    task = study.protocol
    problems = []
    if study.qualification_trials and not task.knows_answers:
        problems.append(f"a qualification block needs answers that can be right or wrong; the {study.task!r} task has none")
    if study.ask_confidence and study.confidence_levels > 3 and study.asks_quality:
        problems.append("a confidence scale of 5 or 6 levels needs the digit keys, which the quality question uses: "
                        "use 3 levels, or a task without the quality question")  # fmt: skip
    if task.adaptive_exposure:
        try:
            ladder = study.ladder_ms
        except ValueError:
            ladder = []
        if len(ladder) < 2 or ladder != sorted(set(ladder)) or ladder[0] < 50:
            problems.append(
                f"staircase_ladder must list at least two exposures in ms, shortest first, from 50 ms up "
                f"(e.g. 100,150,200,300,400,500,700,1000), got {study.staircase_ladder!r}"
            )
    if study.task == Study.Task.DIAGNOSIS:
        unlabelled = sum(p.label not in ("benign", "malignant") for p in pool)
        if unlabelled:
            problems.append(
                f"diagnostic reading needs every image labelled benign or malignant; {unlabelled} image(s) are "
                "'unknown' (re-import them with --label)"
            )
    return problems


def study_problems(*, study: Study) -> list[str]:
    """:func:`design_problems_of` a saved study."""
    return design_problems_of(study=study, groups=study_set_groups(study=study))


def study_check(*, study: Study) -> None:
    """Raise :class:`DesignInvalid` if the study cannot run (see :func:`study_problems`)."""
    problems = study_problems(study=study)
    if problems:
        raise DesignInvalid(study.name, problems)


def study_mask_name(*, study: Study) -> str:
    """Storage name of the noise mask served once a trial's viewing window is over."""
    return f"served/{study.presentation.key}/mask.png"


#: Modification time of every served file on local disk: a web server that sends the bytes itself
#: (nginx, see RATER_IMAGE_ACCEL_PREFIX) derives Last-Modified and ETag from it, and a render made
#: later (say, a generated set added after the real one) must not date itself.
SERVED_MTIME = 946684800  # 2000-01-01T00:00:00Z


def _storage_put(name: str, data: bytes) -> str:
    if default_storage.exists(name):
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:  # a concurrent writer took the name: the bytes are the same function of the same input
        default_storage.delete(saved)
    try:
        path = default_storage.path(name)
    except NotImplementedError:  # object storage: its own dates, never sent to raters (Python sends the bytes)
        pass
    else:
        os.utime(path, (SERVED_MTIME, SERVED_MTIME))
    return name


def study_render(*, study: Study) -> int:
    """Render every image the study may serve, and its mask, ahead of any request; returns how many were made.

    Renders are keyed by the presentation, so an image already rendered for an equal
    presentation (by this or another study) is not rendered again. Raters are refused
    politely until a study is fully rendered (see :func:`session_start`): the server never
    renders on a request, so the time to serve an image says nothing about it.
    """
    presentation = study.presentation
    key = presentation.key
    made = 0
    for image in study_all_images(study=study).exclude(renders__presentation=key).order_by("pk").iterator():
        with image.file.open("rb") as stored:
            data = rendering.render(stored.read(), presentation=presentation)
        name = _storage_put(f"served/{key}/{image.sha256}.png", data)
        Render.objects.get_or_create(image=image, presentation=key, defaults={"name": name})
        made += 1
    mask = study_mask_name(study=study)
    if not default_storage.exists(mask):
        _storage_put(mask, rendering.noise_mask(presentation=presentation, seed=int(key[:8], 16)))
    # Trials drawn before their study had renders (databases from before renders existed).
    pending = list(Trial.objects.filter(session__study=study, render="").select_related("session"))
    if pending:
        renders = study_renders(study=study, image_ids={trial.image_id for trial in pending})
        for trial in pending:
            trial.render = renders[trial.image_id]
            if trial.variant:
                trial.render = _variant_render(
                    study=study, base_name=trial.render, kind=trial.variant, seed=trial.session.seed + trial.index
                )
        Trial.objects.bulk_update(pending, ["render"])
    return made


def study_renders(*, study: Study, image_ids: Iterable[int]) -> dict[int, str]:
    """Image id -> storage name of its render for the study's presentation; raises if any is missing."""
    image_ids = set(image_ids)
    names = dict(
        Render.objects.filter(presentation=study.presentation.key, image_id__in=image_ids).values_list("image_id", "name")
    )
    missing = image_ids - set(names)
    if missing:
        raise StudyNotRendered(
            f"study {study.name!r}: {len(missing)} image(s) are not rendered yet; run `manage.py study_render "
            f"{study.pk}` (or save the study in the admin)",
            extra={"missing": sorted(missing)},
        )
    return names


def _variant_render(*, study: Study, base_name: str, kind: str, seed: int) -> str:
    with default_storage.open(base_name, "rb") as fh:
        pixels = rendering.decode_served(fh.read())
    data = rendering.encode_fixed_png(rendering.variant(pixels, kind=kind, seed=seed))
    return _storage_put(f"served/{study.presentation.key}/t/{secrets.token_hex(16)}.png", data)


def session_start(*, rater: Rater, user_agent: str = "") -> Session:
    """The rater's session, drawn and stored on the first call; later calls return the same one.

    The trial order is drawn once from a seed derived from the study seed and
    the rater, and saved, so it is reproducible and survives restarts. Every trial
    gets the name of the exact bytes it serves: the study's render of its image, or a
    variant rendered here (a corrupted copy, a mirrored repeat), so no image request
    ever renders anything. Raises :class:`StudyNotRendered` while renders are missing.
    """
    existing = session_of_rater(rater=rater)
    if existing is not None:
        return existing
    study = rater.study
    seed = session_seed(study_seed=study.seed, rater_id=rater.pk)
    pool, practice = study_pools(study=study)
    plan = trials_draw(
        design=study.design, pool=pool, practice_pool=practice, seed=seed, seen=study_exposure_counts(study=study)
    )
    renders = study_renders(
        study=study, image_ids={i for planned in plan for i in (planned.image_id, planned.pair_image_id) if i}
    )
    written: list[str] = []

    def served(image_id: int, variant: str, index: int) -> str:
        if not variant:
            return renders[image_id]
        name = _variant_render(study=study, base_name=renders[image_id], kind=variant, seed=seed + index)
        written.append(name)
        return name

    try:
        names: list[tuple[str, str]] = []  # (left or only image, right image)
        for index, planned in enumerate(plan):
            shown = served(planned.image_id, planned.variant, index)
            if planned.pair_image_id is None:
                names.append((shown, ""))
                continue
            # 2AFC: the corrupted check damages the generated image only; a repeat mirrors both.
            partner_variant = "" if planned.variant == Trial.Variant.CORRUPTED else planned.variant
            partner = served(planned.pair_image_id, partner_variant, index)
            names.append((partner, shown) if planned.real_side == "left" else (shown, partner))
        with transaction.atomic():
            session = Session.objects.create(rater=rater, study=study, seed=seed, user_agent=user_agent[:400])
            # Originals first: a repeat trial must point at its (earlier) original when inserted.
            created: dict[int, Trial] = {}
            for repeats in (False, True):
                batch = {
                    index: Trial(
                        session=session,
                        index=index,
                        image_id=planned.image_id,
                        is_practice=planned.is_practice,
                        is_qualification=planned.is_qualification,
                        attention_check=planned.attention_check,
                        repeat_of=created[planned.repeat_of] if repeats else None,
                        variant=planned.variant,
                        pair_image_id=planned.pair_image_id,
                        real_side=planned.real_side,
                        render=names[index][0],
                        render_right=names[index][1],
                    )
                    for index, planned in enumerate(plan)
                    if (planned.repeat_of is not None) == repeats
                }
                Trial.objects.bulk_create(batch.values())
                created.update(batch)
    except IntegrityError:
        for name in written:
            default_storage.delete(name)
        # The same link opened twice at once: the other request created the session.
        existing = session_of_rater(rater=rater)
        if existing is None:
            raise
        return existing
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise
    return session


def trial_mark_shown(*, trial: Trial) -> Trial:
    """Remember when the server first sent this trial (the start of the server-side response time), and,
    in a timed study, fix the exposure it is shown at (a staircase's level is decided here, once)."""
    if trial.shown_at is None:
        now = timezone.now()
        fields = {"shown_at": now}
        study = trial.session.study
        if study.protocol.adaptive_exposure:
            fields["staircase_level"], fields["exposure_ms"] = staircase_level_for(trial=trial)
        elif study.exposure_ms is not None:
            fields["exposure_ms"] = study.exposure_ms
        if Trial.objects.filter(pk=trial.pk, shown_at__isnull=True).update(**fields):
            for name, value in fields.items():
                setattr(trial, name, value)
        else:  # another request marked it first: keep the earliest time
            trial.refresh_from_db(fields=["shown_at", "exposure_ms", "staircase_level"])
    return trial


def staircase_level_for(*, trial: Trial) -> tuple[int, int]:
    """The staircase level (ladder index) and exposure of ``trial``, from the rater's earlier answers.

    Each rater has one staircase per group (each model, and the real images): the analysed trials
    of that group, in order, step it k-down-1-up (:mod:`ratingstudy.studies.staircase`). Practice,
    qualification and check trials are shown at the longest exposure and do not move it.
    """
    study = trial.session.study
    ladder = study.ladder_ms
    if not trial.is_analysed:
        return len(ladder) - 1, ladder[-1]
    image_set = trial.image.image_set
    same_group = (
        Q(trial__image__image_set__kind=ImageSet.Kind.REAL)
        if image_set.kind == ImageSet.Kind.REAL
        else Q(trial__image__image_set__kind=ImageSet.Kind.GENERATED, trial__image__image_set__model_name=image_set.model_name)
    )
    earlier = (
        Response.objects.filter(same_group, trial__session=trial.session, trial__index__lt=trial.index)
        .filter(trial__is_practice=False, trial__is_qualification=False, trial__attention_check="")
        .select_related("trial__image__image_set")
        .order_by("trial__index")
    )
    state = staircase.staircase_start(n_levels=len(ladder))
    for response in earlier:
        correct = bool(study.protocol.correct(trial=response.trial, response=response))
        state = staircase.staircase_step(
            state=state, correct=correct, n_levels=len(ladder), down=study.staircase_down, up=study.staircase_up
        )
    return state.level, ladder[state.level]


def trial_window_closes(*, trial: Trial) -> datetime | None:
    """When a timed trial stops serving its image (None: untimed, or not requested yet)."""
    study = trial.session.study
    if not study.is_timed or trial.window_opened_at is None:
        return None
    exposure = trial.exposure_ms or study.exposure_ms or study.ladder_ms[-1]
    return trial.window_opened_at + timedelta(milliseconds=FIXATION_MS + exposure + WINDOW_GRACE_MS)


def trial_image_serve(*, trial: Trial, answered: bool, side: str = "left", now: datetime | None = None) -> str:
    """The storage name to send for a request of ``trial``'s image now: its render, or the noise mask.

    * an answered trial gets the mask, except a practice trial (its feedback shows the image again);
    * in a timed study the first request opens the trial's viewing window, which stays open for
      the fixation, the exposure and a small grace (:data:`WINDOW_GRACE_MS`); after it, a reload or
      a second fetch gets the mask, whatever the browser's script does.
    """
    study = trial.session.study
    render = trial.render_right if side == "right" else trial.render
    if not render:
        raise ApplicationError(f"this trial shows no {side} image")
    if answered:
        return render if trial.is_practice else study_mask_name(study=study)
    if not study.is_timed:
        return render
    now = now or timezone.now()
    if trial.window_opened_at is None:
        if Trial.objects.filter(pk=trial.pk, window_opened_at__isnull=True).update(window_opened_at=now):
            trial.window_opened_at = now
        else:  # a concurrent request opened it first
            trial.refresh_from_db(fields=["window_opened_at"])
    return render if now <= trial_window_closes(trial=trial) else study_mask_name(study=study)


def rating_submit(
    *, trial: Trial, answer: Answer, received_at: datetime | None = None, last_open: bool | None = None
) -> Response:
    """Store the one response to ``trial``; raise :class:`AlreadyAnswered` if it has one.

    The one-to-one key on ``Response.trial`` is what guarantees a single answer
    when two requests race; the session is marked complete with its last answer.
    ``last_open`` says whether ``trial`` is the session's last unanswered trial when the caller
    has just read the session (:class:`~ratingstudy.studies.selectors.SessionState`); None asks
    the database. (A completion missed by two racing last answers is mended by
    :func:`session_complete` when the rater next asks for a trial.)
    """
    study = trial.session.study
    asked = study.protocol.answer_fields
    if study.asks_real_fake != (answer.judged_real is not None):
        raise ApplicationError("Please say whether the image is real or generated.")
    if study.asks_quality != (answer.quality is not None):
        raise ApplicationError("Please rate the image quality from 1 to 5.")
    if study.asks_confidence != (answer.confidence is not None):
        raise ApplicationError("Please say how confident you are.")
    if answer.confidence is not None and not 1 <= answer.confidence <= study.confidence_levels:
        raise ApplicationError(f"Confidence goes from 1 to {study.confidence_levels}.")
    if ("choice" in asked) != (answer.choice in ("left", "right")):
        raise ApplicationError("Please choose the image you think is real.")
    if ("diagnosis" in asked) != (answer.diagnosis in ("benign", "malignant")):
        raise ApplicationError("Please give your diagnosis: benign or malignant.")
    wants_subtype = "diagnosis" in asked and study.ask_subtype
    if wants_subtype and answer.subtype not in SUBTYPES.get(answer.diagnosis, ()):
        raise ApplicationError(f"Please choose a {answer.diagnosis or 'diagnosis and a'} subtype.")
    if answer.marks and answer.judged_real is not False:
        raise ApplicationError("Marks go with the answer 'generated': they show what gave the image away.")
    received_at = received_at or timezone.now()
    shown_at = trial.shown_at or received_at
    # One INSERT, no transaction of its own: the row is the answer, and the session's completion
    # after it is mended on the next request if it is lost. Inside a caller's transaction (a test,
    # a script), a savepoint keeps a refused duplicate from breaking that transaction.
    guard = transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext()
    try:
        with guard:
            response = Response.objects.create(
                trial=trial,
                judged_real=answer.judged_real,
                confidence=answer.confidence,
                quality=answer.quality,
                choice=answer.choice,
                diagnosis=answer.diagnosis,
                subtype=answer.subtype if wants_subtype else "",
                marks=answer.marks,
                client_ms=answer.client_ms,
                onscreen_ms=answer.onscreen_ms,
                paint_ms=answer.paint_ms,
                zoom_max=answer.zoom_max,
                zoomed_ms=answer.zoomed_ms,
                server_ms=max(0, round((received_at - shown_at).total_seconds() * 1000)),
                created_at=received_at,
            )
        session = trial.session
        if last_open is None:
            last_open = not session.trials.filter(response__isnull=True).exists()
        if last_open:
            session_complete(session=session, now=received_at)
    except IntegrityError as exc:
        if Response.objects.filter(trial=trial).exists():
            raise AlreadyAnswered("This image has already been answered; your first answer was kept.") from exc
        raise
    return response


def session_complete(*, session: Session, now: datetime | None = None) -> Session:
    """Mark ``session`` complete (its every trial answered), once."""
    if session.completed_at is None:
        session.completed_at = now or timezone.now()
        Session.objects.filter(pk=session.pk, completed_at__isnull=True).update(completed_at=session.completed_at)
    return session


def rater_qualification_evaluate(*, rater: Rater) -> bool | None:
    """Once every qualification trial is answered: did the rater reach the pass mark? A rater who did
    not is screened out (a polite page, never analysed). None while the block is not finished."""
    study = rater.study
    trials = list(
        Trial.objects.filter(session__rater=rater, is_qualification=True).select_related("image__image_set", "response")
    )
    if not trials or any(not hasattr(trial, "response") for trial in trials):
        return None
    right = sum(bool(study.protocol.correct(trial=trial, response=trial.response)) for trial in trials)
    passed = right / len(trials) >= study.qualification_pass
    if not passed and not rater.screened_out:
        rater.screened_out = (
            f"qualification: {right} of {len(trials)} right, below the pass mark of {study.qualification_pass:.0%}"
        )
        rater.save(update_fields=["screened_out"])
    return passed


def rater_colour_screen(*, rater: Rater, answers: list[int | None]) -> bool:
    """Score the hue-discrimination screen; a rater below its pass mark is screened out."""
    plates = rater_colour_plates(rater=rater)
    score = colour_screen.colour_screen_score(plates=plates, answers=answers)
    rater.colour_screen_score = score
    fields = ["colour_screen_score"]
    if score < colour_screen.PASS_MARK and not rater.screened_out:
        rater.screened_out = f"colour screen: {score} of {len(plates)} plates, below {colour_screen.PASS_MARK}"
        fields.append("screened_out")
    rater.save(update_fields=fields)
    return score >= colour_screen.PASS_MARK
