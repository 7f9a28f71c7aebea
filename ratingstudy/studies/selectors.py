"""Reads for rating studies. Raters reach rows only through their invitation token."""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.db.models import F, Q, QuerySet
from django.http import Http404

from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.studies.models import Rater, Session, Study, Trial, token_digest
from ratingstudy.studies.sampling import PoolImage


class InvitationRefused(ApplicationError):
    """A known invitation that may not be used now (revoked, or the study is closed)."""


@dataclass(frozen=True)
class Progress:
    """Where a rater stands, counting practice and the study proper separately."""

    practice_done: int
    practice_total: int
    main_done: int
    main_total: int
    qualification_done: int = 0
    qualification_total: int = 0

    @property
    def in_practice(self) -> bool:
        return self.practice_done < self.practice_total

    @property
    def current_label(self) -> str:
        """The next trial's place, e.g. "Practice 2 of 4", "Qualification 1 of 5" or "Image 7 of 44"."""
        if self.in_practice:
            return f"Practice {self.practice_done + 1} of {self.practice_total}"
        if self.qualification_done < self.qualification_total:
            return f"Qualification {self.qualification_done + 1} of {self.qualification_total}"
        return f"Image {min(self.main_done + 1, self.main_total)} of {self.main_total}"

    @property
    def practice_done_label(self) -> str:
        return f"Practice {self.practice_done} of {self.practice_total}"

    @property
    def percent(self) -> int:
        total = self.practice_total + self.qualification_total + self.main_total
        done = self.practice_done + self.qualification_done + self.main_done
        return round(100 * done / total) if total else 100


def rater_get(*, token: str) -> Rater:
    """The rater holding ``token``; 404 for an unknown token, :class:`InvitationRefused` for an unusable one."""
    # The session comes along (a reverse one-to-one): rater pages read it on every request.
    rater = Rater.objects.select_related("study", "session").filter(token_hash=token_digest(token)).first()
    if rater is None:
        raise Http404("unknown invitation")
    rater.token = token  # known for this request only, to build the rater's own links
    return rater_check(rater)


def rater_check(rater: Rater) -> Rater:
    """``rater`` if their invitation may be used now, else :class:`InvitationRefused` saying why."""
    if rater.is_audit:  # blinding_audit's own temporary rater: fetches images, closed study or not
        return rater
    if rater.withdrawn_at is not None:
        raise InvitationRefused(
            "You have withdrawn from this study. Thank you for your time; nothing more is asked of you.",
            extra={"reason": "withdrawn"},
        )
    if rater.revoked:
        raise InvitationRefused(
            "This invitation link has been withdrawn. If you think this is a mistake, "
            "please contact the study team who sent it to you.",
            extra={"reason": "revoked"},
        )
    if not rater.study.is_open:
        raise InvitationRefused(
            "This study is not open at the moment. Thank you for your interest; "
            "the study team will let you know if it reopens.",
            extra={"reason": "closed"},
        )
    return rater


def rater_needs_consent(*, rater: Rater) -> bool:
    """Whether the study asks for consent and the rater has not agreed to its current text."""
    study = rater.study
    return bool(study.consent_text) and rater.consent_version != study.consent_version


def session_of_rater(*, rater: Rater) -> Session | None:
    return Session.objects.filter(rater=rater).first()


def trial_for_image(*, token: str, trial_token: str) -> Trial:
    """The trial ``trial_token`` of the rater holding ``token``, for an image request: one query.

    ``trial.session.rater`` (checked by :func:`rater_check`) and ``trial.session.study`` come with it,
    and ``trial.answered``. 404 for an unknown invitation or a trial of another rater.
    """
    trial = (
        Trial.objects.select_related("session__rater__study")
        .annotate(response_pk=F("response__pk"))
        .filter(token=trial_token, session__rater__token_hash=token_digest(token))
        .first()
    )
    if trial is None:
        raise Http404("unknown trial")
    rater = trial.session.rater
    rater.token = token
    rater_check(rater)
    trial.session.study = rater.study
    trial.answered = trial.response_pk is not None
    return trial


#: Columns read for each trial of a session: the trial's own, then its response's key.
_TRIAL_COLUMNS = tuple(f.attname for f in Trial._meta.concrete_fields)


class SessionState:
    """A rater's session with all its trials in order, each known answered or not: read in one query.

    What the rater pages need per request (the current trial, the next one, the trial after it to
    preload, the progress counts) comes from these rows instead of one query each. Rows stay plain
    tuples (a session may hold hundreds of trials); only the trials a request uses become model
    instances, whose ``session`` is the one ``session`` object, with the rater's own ``study``.
    """

    def __init__(self, *, session: Session, rows: list[tuple]) -> None:
        self.session = session
        self._rows = rows  # (trial columns..., response pk)
        self._index = _TRIAL_COLUMNS.index("index")
        self._token = _TRIAL_COLUMNS.index("token")
        self._pk = _TRIAL_COLUMNS.index("id")
        self._practice = _TRIAL_COLUMNS.index("is_practice")
        self._qualification = _TRIAL_COLUMNS.index("is_qualification")
        self._answered = {row[self._pk] for row in rows if row[-1] is not None}
        self._trials: dict[int, Trial] = {}

    def _trial(self, row: tuple) -> Trial:
        pk = row[self._pk]
        if pk not in self._trials:
            trial = Trial.from_db(self.session._state.db, _TRIAL_COLUMNS, row[:-1])
            trial.session = self.session
            trial.answered = pk in self._answered
            self._trials[pk] = trial
        return self._trials[pk]

    def trial(self, token: str) -> Trial:
        """A trial of this session by its token; 404 for any other token."""
        for row in self._rows:
            if row[self._token] == token:
                return self._trial(row)
        raise Http404("unknown trial")

    def next_trial(self) -> Trial | None:
        """The first unanswered trial in order, or None when every trial is answered."""
        row = next((row for row in self._rows if row[self._pk] not in self._answered), None)
        return None if row is None else self._trial(row)

    def token_after(self, trial: Trial) -> str | None:
        """The token of the trial after ``trial`` (to preload its image), or None."""
        later = [row for row in self._rows if row[self._index] > trial.index]
        return min(later, key=lambda row: row[self._index])[self._token] if later else None

    def others_open(self, trial: Trial) -> bool:
        """Whether a trial other than ``trial`` is still unanswered."""
        return any(row[self._pk] not in self._answered and row[self._pk] != trial.pk for row in self._rows)

    def mark_answered(self, trial: Trial) -> None:
        self._answered.add(trial.pk)
        trial.answered = True

    def progress(self) -> Progress:
        counts = Counter()
        for row in self._rows:
            block = "practice" if row[self._practice] else "qualification" if row[self._qualification] else "main"
            counts[f"{block}_total"] += 1
            counts[f"{block}_done"] += row[self._pk] in self._answered
        names = ("practice_done", "practice_total", "main_done", "main_total", "qualification_done", "qualification_total")
        return Progress(**{name: counts[name] for name in names})


def session_state(*, rater: Rater) -> SessionState | None:
    """The rater's session and every trial of it, with whether each is answered, or None.

    One query for the trials; the session itself comes with the rater (:func:`rater_get`
    selects it), else one more.
    """
    try:
        session = rater.session
    except Session.DoesNotExist:
        return None
    session.rater = rater
    session.study = rater.study
    rows = _trial_rows(session)
    return SessionState(session=session, rows=rows) if rows else None


def _trial_rows(session: Session) -> list[tuple]:
    """Every trial of ``session`` in order, as ``(trial columns..., response pk or None)``."""
    return list(Trial.objects.filter(session=session).order_by("index").values_list(*_TRIAL_COLUMNS, "response__pk"))


def session_next_trial(*, session: Session) -> Trial | None:
    """The first unanswered trial in order, or None when the session is finished."""
    return session.trials.filter(response__isnull=True).order_by("index").first()


def session_progress(*, session: Session) -> Progress:
    """Where the rater of ``session`` stands (one query; rater pages take it from :func:`session_state`)."""
    return SessionState(session=session, rows=_trial_rows(session)).progress()


def study_images(*, study: Study) -> QuerySet[Image]:
    """Every image the study draws from, real and generated."""
    return Image.objects.filter(
        Q(image_set__in=study.real_image_sets.all()) | Q(image_set__in=study.generated_image_sets.all())
    ).select_related("image_set")


def _pool_image(image: Image) -> PoolImage:
    is_real = image.image_set.kind == ImageSet.Kind.REAL
    return PoolImage(
        image_id=image.pk, is_real=is_real, label=image.label, model_name="" if is_real else image.image_set.model_name
    )


def _holdout_rank(seed: int, image_id: int) -> bytes:
    return hashlib.sha256(f"{seed}:{image_id}".encode()).digest()


def sets_pools(
    *,
    analysed_sets: list[ImageSet],
    practice_sets: list[ImageSet],
    practice_trials: int,
    practice_holdout: float,
    seed: int,
) -> tuple[list[PoolImage], list[PoolImage]]:
    """The analysed pool and the practice pool (never analysed) of a design, each in id order.

    Practice images come from the practice sets when there are any; otherwise
    ``practice_holdout`` of each group (real images, each model) is held out, chosen by a
    hash of the study seed and the image id (stable across requests, unpredictable to raters).
    """
    images = Image.objects.filter(image_set__in=analysed_sets).select_related("image_set").order_by("pk")
    pool = [_pool_image(image) for image in images]
    if practice_sets:
        practice = [
            _pool_image(image)
            for image in Image.objects.filter(image_set__in=practice_sets).select_related("image_set").order_by("pk")
        ]
    elif practice_trials and practice_holdout > 0:
        groups: dict[tuple[bool, str], list[PoolImage]] = defaultdict(list)
        for image in pool:
            groups[(image.is_real, image.model_name)].append(image)
        practice = []
        for members in groups.values():
            count = math.ceil(practice_holdout * len(members))
            practice += sorted(members, key=lambda p: _holdout_rank(seed, p.image_id))[:count]
        practice.sort(key=lambda p: p.image_id)
    else:
        practice = []
    held_out = {p.image_id for p in practice}
    return [p for p in pool if p.image_id not in held_out], practice


def study_pools(*, study: Study) -> tuple[list[PoolImage], list[PoolImage]]:
    """The study's analysed and practice pools (see :func:`sets_pools`)."""
    return sets_pools(
        analysed_sets=[*study.real_image_sets.all(), *study.generated_image_sets.all()],
        practice_sets=list(study.practice_image_sets.all()),
        practice_trials=study.practice_trials,
        practice_holdout=study.practice_holdout,
        seed=study.seed,
    )


def study_all_images(*, study: Study) -> QuerySet[Image]:
    """Every image the study may serve: its real, generated and practice sets."""
    return Image.objects.filter(
        Q(image_set__in=study.real_image_sets.all())
        | Q(image_set__in=study.generated_image_sets.all())
        | Q(image_set__in=study.practice_image_sets.all())
    ).select_related("image_set")


def sets_image_sizes(*, groups: dict[str, list[ImageSet]]) -> dict[str, set[tuple[int, int]]]:
    """The distinct (width, height) of the images of each group of sets."""
    return {
        group: set(Image.objects.filter(image_set__in=members).values_list("width", "height").distinct())
        for group, members in groups.items()
    }


def study_set_groups(*, study: Study) -> dict[str, list[ImageSet]]:
    """The study's image sets by role: real, generated, practice."""
    return {
        "real": list(study.real_image_sets.all()),
        "generated": list(study.generated_image_sets.all()),
        "practice": list(study.practice_image_sets.all()),
    }


def study_exposure_counts(*, study: Study) -> dict[int, int]:
    """Image id -> number of sessions of the study that have it as an analysed trial."""
    rows = (
        Trial.objects.filter(session__study=study, is_practice=False, attention_check="")
        .values_list("image_id", flat=True)
    )
    return dict(Counter(rows))


def raters_needed(*, study: Study) -> int:
    """Invitations needed so that every image is seen by ``raters_per_image`` raters."""
    pool = study_images(study=study).count()
    return -(-pool * study.raters_per_image // study.images_per_rater) if study.images_per_rater else 0


@dataclass(frozen=True)
class PracticeFeedback:
    """What a rater is told after a practice trial (never after a trial of the study proper)."""

    was_real: bool
    judged_real: bool | None
    quality: int | None
    last_practice: bool

    @property
    def correct(self) -> bool | None:
        return None if self.judged_real is None else self.judged_real == self.was_real


def practice_feedback(*, trial: Trial) -> PracticeFeedback:
    """Feedback on an answered practice trial; 404 for any other trial (the truth stays hidden)."""
    response = getattr(trial, "response", None) if trial.is_practice else None
    if response is None:
        raise Http404("no feedback for this trial")
    return PracticeFeedback(
        was_real=trial.image.image_set.kind == ImageSet.Kind.REAL,
        judged_real=response.judged_real,
        quality=response.quality,
        last_practice=not trial.session.trials.filter(is_practice=True, index__gt=trial.index).exists(),
    )


def studies_visible_to(*, user) -> QuerySet[Study]:
    """The studies ``user`` may see: all for a superuser, else those they own or collaborate on."""
    if not (user.is_active and user.is_staff):
        return Study.objects.none()
    if user.is_superuser:
        return Study.objects.all()
    return Study.objects.filter(Q(owner=user) | Q(collaborators=user)).distinct()


def rater_colour_plates(*, rater: Rater) -> list:
    """The hue-discrimination plates this rater is shown (drawn from their session seed)."""
    from ratingstudy.studies.colour_screen import colour_plates
    from ratingstudy.studies.sampling import session_seed

    return colour_plates(seed=session_seed(study_seed=rater.study.seed, rater_id=rater.pk))
