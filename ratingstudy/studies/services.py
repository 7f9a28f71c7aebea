"""Writes for rating studies: invitations, profiles, sessions and responses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ratingstudy.catalog.models import ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.studies.models import Rater, Response, Session, Study, Trial
from ratingstudy.studies.sampling import design_problems, session_seed, trials_draw
from ratingstudy.studies.selectors import session_of_rater, study_exposure_counts, study_pool


class AlreadyAnswered(ApplicationError):
    """The trial has its response already (double click, refresh, back button); nothing was written."""


@dataclass(frozen=True)
class Answer:
    """A rater's answer to one trial, as it arrives from the browser (validated by the form)."""

    judged_real: bool | None
    confidence: int | None
    quality: int | None
    client_ms: int | None


def study_create(
    *,
    name: str,
    instructions: str,
    real_image_sets: list[ImageSet],
    generated_image_sets: list[ImageSet],
    **design: object,
) -> Study:
    """Create a study from image sets and design fields (see :class:`Study`); refused if it cannot run."""
    unknown = set(design) - {f.name for f in Study._meta.concrete_fields}
    if unknown:
        raise ApplicationError(f"unknown study fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        study = Study(name=name, instructions=instructions, **design)
        try:
            study.full_clean()
        except ValidationError as exc:
            details = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
            raise ApplicationError(f"study {name!r}: {details}") from exc
        study.save()
        study.real_image_sets.set(real_image_sets)
        study.generated_image_sets.set(generated_image_sets)
        study_check(study=study)
    return study


def raters_create(*, study: Study, count: int, note: str = "") -> list[Rater]:
    """Create ``count`` invitations (each with its own 256-bit token)."""
    if count < 1:
        raise ApplicationError(f"count must be at least 1, got {count}")
    return [Rater.objects.create(study=study, note=note) for _ in range(count)]


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
    rater.role = role
    rater.years_experience = years_experience
    rater.specialty = specialty.strip()
    rater.consented_at = now if consented else None
    rater.profile_completed_at = now
    rater.save(update_fields=["role", "years_experience", "specialty", "consented_at", "profile_completed_at"])
    return rater


def study_check(*, study: Study) -> None:
    """Raise if the study cannot run: wrong kinds of image sets, or pools too small for its design."""
    wrong = [s.name for s in study.real_image_sets.all() if s.kind != ImageSet.Kind.REAL]
    wrong += [s.name for s in study.generated_image_sets.all() if s.kind != ImageSet.Kind.GENERATED]
    if wrong:
        raise ApplicationError(f"image sets in the wrong role (real vs generated): {', '.join(wrong)}")
    pool = study_pool(study=study)
    problems = design_problems(
        design=study.design,
        n_real=sum(p.is_real for p in pool),
        n_generated=sum(not p.is_real for p in pool),
    )
    if problems:
        raise ApplicationError(f"study {study.name!r} cannot run: " + "; ".join(problems))


def session_start(*, rater: Rater, user_agent: str = "") -> Session:
    """The rater's session, drawn and stored on the first call; later calls return the same one.

    The trial order is drawn once from a seed derived from the study seed and
    the rater, and saved, so it is reproducible and survives restarts.
    """
    existing = session_of_rater(rater=rater)
    if existing is not None:
        return existing
    study = rater.study
    seed = session_seed(study_seed=study.seed, rater_id=rater.pk)
    try:
        with transaction.atomic():
            plan = trials_draw(
                design=study.design,
                pool=study_pool(study=study),
                seed=seed,
                seen=study_exposure_counts(study=study),
            )
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
                        attention_check=planned.attention_check,
                        repeat_of=created[planned.repeat_of] if repeats else None,
                    )
                    for index, planned in enumerate(plan)
                    if (planned.repeat_of is not None) == repeats
                }
                Trial.objects.bulk_create(batch.values())
                created.update(batch)
    except IntegrityError:
        # The same link opened twice at once: the other request created the session.
        existing = session_of_rater(rater=rater)
        if existing is None:
            raise
        return existing
    return session


def trial_mark_shown(*, trial: Trial) -> Trial:
    """Remember when the server first sent this trial (the start of the server-side response time)."""
    if trial.shown_at is None:
        now = timezone.now()
        if Trial.objects.filter(pk=trial.pk, shown_at__isnull=True).update(shown_at=now):
            trial.shown_at = now
        else:  # another request marked it first: keep the earliest time
            trial.refresh_from_db(fields=["shown_at"])
    return trial


def rating_submit(*, trial: Trial, answer: Answer, received_at: datetime | None = None) -> Response:
    """Store the one response to ``trial``; raise :class:`AlreadyAnswered` if it has one.

    The one-to-one key on ``Response.trial`` is what guarantees a single answer
    when two requests race; the session is marked complete with its last answer.
    """
    study = trial.session.study
    if study.asks_real_fake != (answer.judged_real is not None):
        raise ApplicationError("Please say whether the image is real or generated.")
    if study.asks_quality != (answer.quality is not None):
        raise ApplicationError("Please rate the image quality from 1 to 5.")
    if (study.asks_real_fake and study.ask_confidence) != (answer.confidence is not None):
        raise ApplicationError("Please say how confident you are.")
    received_at = received_at or timezone.now()
    shown_at = trial.shown_at or received_at
    try:
        with transaction.atomic():
            response = Response.objects.create(
                trial=trial,
                judged_real=answer.judged_real,
                confidence=answer.confidence,
                quality=answer.quality,
                client_ms=answer.client_ms,
                server_ms=max(0, round((received_at - shown_at).total_seconds() * 1000)),
                created_at=received_at,
            )
            session = trial.session
            if not session.trials.filter(response__isnull=True).exists():
                session.completed_at = received_at
                session.save(update_fields=["completed_at"])
    except IntegrityError as exc:
        if Response.objects.filter(trial=trial).exists():
            raise AlreadyAnswered("This image has already been answered; your first answer was kept.") from exc
        raise
    return response
