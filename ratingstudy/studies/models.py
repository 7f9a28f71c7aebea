"""Rating studies: design, invited raters, their sessions, trials and responses.

Truth (real or generated, which model, benign or malignant) lives only on
``catalog.Image`` and its ``ImageSet``; a rater's browser sees trials through
their opaque ``Trial.token`` and never any of those fields. The "model" of a
generated image is ``image.image_set.model_name``; real images form their own group.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.studies.rendering import Presentation

QUALITY_LABELS = {1: "Bad", 2: "Poor", 3: "Fair", 4: "Good", 5: "Excellent"}  # ITU-R BT.500 ACR
CONFIDENCE_LABELS = {1: "Guessing", 2: "Fairly sure", 3: "Certain"}
#: Confidence scales a study may ask (rating-method ROC, Metz 1978): labels from least to most sure.
CONFIDENCE_SCALES = {
    3: ("Guessing", "Fairly sure", "Certain"),
    5: ("Guessing", "Unsure", "Fairly sure", "Quite sure", "Certain"),
    6: ("Guessing", "Unsure", "Somewhat sure", "Fairly sure", "Quite sure", "Certain"),
}
#: BreakHis subtypes, for diagnostic reading with subtypes.
SUBTYPES = {
    "benign": ("adenosis", "fibroadenoma", "phyllodes_tumor", "tubular_adenoma"),
    "malignant": ("ductal_carcinoma", "lobular_carcinoma", "mucinous_carcinoma", "papillary_carcinoma"),
}
DEFAULT_STAIRCASE_LADDER = "100,150,200,300,400,500,700,1000"
#: Timed studies: a fixation cross this long comes before each image (as in HYPE, Zhou et al. 2019).
FIXATION_MS = 500
#: Timed studies: the server serves an image until fixation + exposure + this grace after its first request.
WINDOW_GRACE_MS = 1000


def new_invitation_token() -> str:
    """256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database keeps of an invitation token: its sha256 (hex).

    The token carries 256 random bits, so its hash cannot be reversed or guessed;
    a stolen database (or a backup, or an admin screen) gives no usable link.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def new_trial_token() -> str:
    """128 random bits, URL-safe (22 characters): the only name a browser has for a trial image."""
    return secrets.token_urlsafe(16)


def new_study_seed() -> int:
    return secrets.randbelow(2**31)


@dataclass(frozen=True)
class StudyDesign:
    """The part of a study that decides which trials a rater gets (see ``sampling.trials_draw``)."""

    images_per_rater: int
    balance: str
    practice_trials: int
    corrupted_checks: int
    repeat_checks: int
    qualification_trials: int = 0
    paired: bool = False  # 2AFC: each analysed trial is a generated image beside a real one


#: Study fields a design sets (the admin form's and the ``study_create`` JSON's, besides the image sets).
DESIGN_FIELDS = (
    "name", "description", "task", "ask_confidence", "instructions", "consent_text", "images_per_rater", "balance",
    "raters_per_image", "practice_trials", "practice_holdout", "corrupted_checks", "repeat_checks", "exposure_ms",
    "seed", "is_open", "canvas_width", "canvas_height", "fit", "jpeg_quality", "exclude_after_failed_checks",
    "exclude_failed_share", "withdrawal", "confidence_levels", "ask_subtype", "noninferiority_margin",
    "staircase_ladder", "staircase_down", "staircase_up", "qualification_trials", "qualification_pass", "colour_screen",
)  # fmt: skip

#: Fields that change what a rater sees or how trials are drawn: locked once a study has a response
#: (a new design version, a copy, takes the change). Not locked: the name and description, whether it
#: is open, the consent text (versioned on its own, raters agree again), the exclusion rule (analysis
#: only, recorded in the manifest), and who may see the study.
LOCKED_FIELDS = (
    "task", "ask_confidence", "instructions", "images_per_rater", "balance", "raters_per_image",
    "practice_trials", "practice_holdout", "corrupted_checks", "repeat_checks", "exposure_ms", "seed",
    "canvas_width", "canvas_height", "fit", "jpeg_quality", "real_image_sets", "generated_image_sets",
    "practice_image_sets", "confidence_levels", "ask_subtype", "staircase_ladder", "staircase_down", "staircase_up",
    "qualification_trials", "qualification_pass", "colour_screen",
)  # fmt: skip


class Study(models.Model):
    """A rating study: the image sets it draws from, what raters are asked, and how trials are drawn."""

    class Task(models.TextChoices):
        REAL_FAKE = "real_fake", "Real or generated"
        QUALITY = "quality", "Quality 1-5"
        BOTH = "both", "Real or generated, and quality 1-5"
        PAIRED = "2afc", "Paired: which of two images is real (2AFC)"
        DIAGNOSIS = "diagnosis", "Diagnostic reading: benign or malignant"
        MARK = "mark", "Real or generated, marking what gave a generated image away"
        STAIRCASE = "staircase", "HYPE-time staircase: real or generated at adaptive exposure"

    class Fit(models.TextChoices):
        FIT = "fit", "Fit: the whole field, letterboxed with a neutral pad"
        CROP = "crop", "Crop: centre crop to the canvas"
        NATIVE = "native", "Native: 1:1 pixels, centred"

    class Withdrawal(models.TextChoices):
        DELETE = "delete", "Delete their answers"
        ANONYMISE = "anonymise", "Keep their answers without their profile"

    class Balance(models.TextChoices):
        STRATIFIED = "stratified", "Half real, half generated; stratified by model and by benign/malignant"
        RANDOM = "random", "Uniform random draw from all images"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, help_text="For researchers only; never shown to raters.")
    instructions = models.TextField(help_text="Shown to raters before they start (plain text).")
    consent_text = models.TextField(
        blank=True,
        help_text="If set, raters must tick a box agreeing to it before they start. Changing it asks every "
        "rater to agree again before their next trial.",
    )
    consent_version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Goes up each time the consent text changes."
    )
    withdrawal = models.CharField(
        max_length=16,
        choices=Withdrawal.choices,
        default=Withdrawal.DELETE,
        help_text="What happens to a rater's answers when they withdraw from their link.",
    )
    design_version = models.PositiveIntegerField(
        default=1, editable=False, help_text="1 for a new study; a new design version is a copy with the next number."
    )
    previous_version = models.ForeignKey(
        "self", null=True, blank=True, editable=False, on_delete=models.SET_NULL, related_name="next_versions"
    )
    real_image_sets = models.ManyToManyField(
        ImageSet, related_name="real_in_studies", limit_choices_to={"kind": ImageSet.Kind.REAL}
    )
    generated_image_sets = models.ManyToManyField(
        ImageSet,
        related_name="generated_in_studies",
        limit_choices_to={"kind": ImageSet.Kind.GENERATED},
        blank=True,
    )
    task = models.CharField(max_length=16, choices=Task.choices, default=Task.BOTH)
    ask_confidence = models.BooleanField(
        default=False, help_text="Ask how confident the rater is in the real/generated judgment (see the scale)."
    )
    confidence_levels = models.PositiveSmallIntegerField(
        choices=[(3, "1-3"), (5, "1-5"), (6, "1-6")],
        default=3,
        help_text="Confidence scale; 5 or 6 levels give a finer ROC (only without the quality question).",
    )
    ask_subtype = models.BooleanField(default=False, help_text="Diagnosis: also ask the histological subtype.")
    noninferiority_margin = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text="Diagnosis: generated images are diagnostically faithful when reader accuracy on them is not "
        "worse than on real images by more than this (paired by reader).",
    )
    staircase_ladder = models.CharField(
        max_length=200,
        default=DEFAULT_STAIRCASE_LADDER,
        help_text="Staircase: exposures in ms, shortest first, comma-separated.",
    )
    staircase_down = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1)], help_text="Staircase: correct answers in a row before a shorter exposure."
    )
    staircase_up = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Staircase: wrong answers before a longer exposure."
    )
    qualification_trials = models.PositiveIntegerField(
        default=0, help_text="Trials with known answers after the practice; a rater below the pass mark is not analysed."
    )
    qualification_pass = models.FloatField(
        default=0.8, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)], help_text="Share correct to qualify."
    )
    colour_screen = models.BooleanField(
        default=False,
        help_text="Start with a short hue-discrimination screen (generated colour patches, not a clinical "
        "colour-vision test); a rater who fails it is not analysed.",
    )
    images_per_rater = models.PositiveIntegerField(
        default=40, validators=[MinValueValidator(2)], help_text="Analysed trials per rater (practice and checks excluded)."
    )
    balance = models.CharField(max_length=16, choices=Balance.choices, default=Balance.STRATIFIED)
    raters_per_image = models.PositiveIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="Target number of raters per image; sessions prefer the least-seen images.",
    )
    practice_trials = models.PositiveIntegerField(
        default=4, help_text="Trials with feedback before the study proper; excluded from analysis."
    )
    corrupted_checks = models.PositiveIntegerField(
        default=1, help_text="Attention checks showing a visibly corrupted image (expected: low quality / generated)."
    )
    repeat_checks = models.PositiveIntegerField(
        default=2, help_text="Attention checks repeating an earlier image later in the session (intra-rater consistency)."
    )
    exposure_ms = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(100)],
        help_text="If set, the image is hidden after this many milliseconds; answering time stays unlimited.",
    )
    canvas_width = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(32), MaxValueValidator(4096)],
        help_text="Width in pixels of what every rater is served; blank: derived from the images.",
    )
    canvas_height = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(32), MaxValueValidator(4096)],
        help_text="Height in pixels of what every rater is served; blank: derived from the images.",
    )
    fit = models.CharField(
        max_length=8,
        choices=Fit.choices,
        default=Fit.FIT,
        help_text="How an image is placed on the canvas; real and generated images always get the same geometry.",
    )
    jpeg_quality = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=(
            "If set, every image (real and generated) goes through one JPEG round trip at this quality before "
            "it is served, so that compression artefacts that only one group had are no longer a cue."
        ),
    )
    practice_image_sets = models.ManyToManyField(
        ImageSet,
        related_name="practice_in_studies",
        blank=True,
        help_text="Practice images come only from these sets (never analysed). Blank: a held-out share of the study's sets.",
    )
    practice_holdout = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text="Without practice sets: this share of each group (real, each model) is held out for practice, never analysed.",
    )
    exclude_after_failed_checks = models.PositiveSmallIntegerField(
        default=2,
        help_text="Exclude a rater from the analysis after this many failed attention checks (0: never by count).",
    )
    exclude_failed_share = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="...or when more than this share of their checks failed (1.0: never by share).",
    )
    seed = models.BigIntegerField(default=new_study_seed, help_text="Sessions derive their seed from it.")
    is_open = models.BooleanField(default=False, help_text="Raters can only rate while the study is open.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_studies",
        help_text="Who designed the study; with the collaborators, the only staff who see it (besides superusers).",
    )
    collaborators = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="collaborating_studies",
        help_text="Staff who may work on this study, within their role (study manager, viewer).",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        permissions = [
            ("view_results", "Can read a study's results"),
            ("export_results", "Can export a study's rater data"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            stored = Study.objects.filter(pk=self.pk).values_list("consent_text", flat=True).first()
            if stored is not None and stored != self.consent_text:
                self.consent_version += 1  # raters must agree to the new text before their next trial
                update_fields = kwargs.get("update_fields")
                if update_fields is not None:
                    kwargs["update_fields"] = {*update_fields, "consent_version"}
        super().save(*args, **kwargs)

    @property
    def protocol(self):
        """The study's task from the task registry (what is drawn, asked and analysed)."""
        from ratingstudy.studies.tasks import get_task

        return get_task(self.task)

    @property
    def asks_real_fake(self) -> bool:
        return "judged_real" in self.protocol.answer_fields

    @property
    def asks_quality(self) -> bool:
        return "quality" in self.protocol.answer_fields

    @property
    def asks_confidence(self) -> bool:
        return self.ask_confidence and self.asks_real_fake

    @property
    def confidence_labels(self) -> tuple[str, ...]:
        return CONFIDENCE_SCALES[self.confidence_levels]

    @property
    def ladder_ms(self) -> list[int]:
        return [int(step) for step in self.staircase_ladder.split(",") if step.strip()]

    @property
    def trials_after_practice(self) -> int:
        """How many trials a rater answers after the practice (analysed ones and attention checks)."""
        return self.images_per_rater + self.corrupted_checks + self.repeat_checks

    @property
    def is_timed(self) -> bool:
        return self.exposure_ms is not None or self.protocol.adaptive_exposure

    @property
    def presentation(self) -> Presentation:
        """How images are put on the canvas; the canvas is resolved when the study is created."""
        if self.canvas_width is None or self.canvas_height is None:
            raise ValueError(f"study {self.name!r} has no canvas yet (it is derived from the images at creation)")
        return Presentation(
            width=self.canvas_width, height=self.canvas_height, fit=self.fit, jpeg_quality=self.jpeg_quality
        )

    @property
    def has_responses(self) -> bool:
        return Response.objects.filter(trial__session__study=self).exists()

    @property
    def consent_sha256(self) -> str:
        return hashlib.sha256(self.consent_text.encode()).hexdigest()

    def is_visible_to(self, user) -> bool:
        """Whether ``user`` (staff) may see this study at all; what they may do is their role's permissions."""
        if not (user.is_active and user.is_staff):
            return False
        return user.is_superuser or self.owner_id == user.pk or self.collaborators.filter(pk=user.pk).exists()

    def is_excluded(self, *, failed: int, checked: int) -> bool:
        """The study's exclusion rule: too many failed attention checks, by count or by share."""
        by_count = self.exclude_after_failed_checks > 0 and failed >= self.exclude_after_failed_checks
        by_share = checked > 0 and failed / checked > self.exclude_failed_share
        return by_count or by_share

    @property
    def design(self) -> StudyDesign:
        return StudyDesign(
            images_per_rater=self.images_per_rater,
            balance=self.balance,
            practice_trials=self.practice_trials,
            corrupted_checks=self.corrupted_checks,
            repeat_checks=self.repeat_checks,
            qualification_trials=self.qualification_trials,
            paired=self.protocol.paired,
        )


class Rater(models.Model):
    """One invited person in one study, known only by their invitation token and short profile."""

    class Role(models.TextChoices):
        PATHOLOGIST = "pathologist", "Pathologist"
        RESIDENT = "resident", "Pathology resident / trainee"
        CLINICIAN = "clinician", "Other clinician"
        SCIENTIST = "scientist", "Researcher / scientist"
        OTHER = "other", "Other"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="raters")
    token_hash = models.CharField(
        max_length=64, unique=True, editable=False, help_text="sha256 of the invitation token; the token itself is never stored."
    )
    token_issued_at = models.DateTimeField(default=timezone.now, editable=False)
    note = models.CharField(
        max_length=200, blank=True, help_text="Whom this link was sent to (staff only, never shown to raters)."
    )
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    years_experience = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(70)])
    specialty = models.CharField(max_length=200, blank=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    consent_version = models.PositiveIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text="The latest consent version agreed to (its record is a ConsentRecord); read on every rater request.",
    )
    profile_completed_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)
    is_audit = models.BooleanField(
        default=False, editable=False, help_text="A temporary rater of blinding_audit: never analysed, deleted after the audit."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    colour_screen_score = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Plates answered right in the hue-discrimination screen."
    )
    screened_out = models.CharField(
        max_length=200, blank=True, default="", help_text="Why the rater is not analysed (screen or qualification failed)."
    )
    withdrawn_at = models.DateTimeField(
        null=True, blank=True, help_text="The rater withdrew: their profile is cleared and their link refused."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["study_id", "created_at", "id"]

    def __str__(self) -> str:
        return f"rater {self.pk} ({self.note or 'no note'}) in {self.study}"

    #: The plain token, known only to the object that issued it or that was looked up by it (never stored).
    token: str | None = None

    def save(self, *args, **kwargs) -> None:
        if not self.token_hash:
            self.issue_token()
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        """The path of the invitation link (prefix the site's origin to send it); only while the token is known."""
        if not self.token:
            raise ValueError(
                f"rater {self.pk}: the invitation token is not stored, only its hash; re-issue the link to get a new one"
            )
        return reverse("studies:invitation", kwargs={"token": self.token})

    def issue_token(self) -> str:
        """A new invitation token for this rater (the old link stops working once saved)."""
        self.token = new_invitation_token()
        self.token_hash = token_digest(self.token)
        self.token_issued_at = timezone.now()
        return self.token

    @property
    def has_profile(self) -> bool:
        return self.profile_completed_at is not None


class Session(models.Model):
    """A rater's one pass through a study; its trials are drawn once, from ``seed``, and stored."""

    rater = models.OneToOneField(Rater, on_delete=models.CASCADE, related_name="session")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="sessions")
    seed = models.BigIntegerField()
    user_agent = models.CharField(max_length=400, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study_id", "started_at", "id"]

    def __str__(self) -> str:
        return f"session {self.pk} of {self.rater}"

    @property
    def is_complete(self) -> bool:
        return self.completed_at is not None


class Trial(models.Model):
    """One image shown at one position of a session, named to the browser only by ``token``."""

    class AttentionCheck(models.TextChoices):
        NONE = "", "None"
        CORRUPTED = "corrupted", "Corrupted image"
        REPEAT = "repeat", "Repeated image"

    class Variant(models.TextChoices):
        NONE = "", "As rendered"
        CORRUPTED = "corrupted", "Corrupted (attention check)"
        FLIP_H = "flip_h", "Mirrored left-right (repeat check)"
        FLIP_V = "flip_v", "Mirrored top-bottom (repeat check)"
        ROT180 = "rot180", "Rotated 180 degrees (repeat check)"

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="trials")
    index = models.PositiveIntegerField(help_text="0-based position; practice trials come first.")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="trials")
    token = models.CharField(max_length=32, unique=True, default=new_trial_token, editable=False)
    is_practice = models.BooleanField(default=False)
    is_qualification = models.BooleanField(
        default=False, help_text="A trial of the qualification block: known answer, never analysed."
    )
    pair_image = models.ForeignKey(
        Image, null=True, blank=True, on_delete=models.PROTECT, related_name="paired_trials",
        help_text="2AFC: the real image shown beside ``image`` (the generated one).",
    )
    real_side = models.CharField(
        max_length=5, blank=True, default="", choices=[("", "-"), ("left", "left"), ("right", "right")]
    )
    render_right = models.CharField(max_length=300, blank=True, default="", help_text="2AFC: the right image's bytes.")
    exposure_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="The exposure this trial was shown at (the study's, or its staircase level's)."
    )
    staircase_level = models.PositiveSmallIntegerField(null=True, blank=True)
    attention_check = models.CharField(
        max_length=16, choices=AttentionCheck.choices, blank=True, default=AttentionCheck.NONE
    )
    repeat_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="repeats"
    )
    variant = models.CharField(
        max_length=16,
        choices=Variant.choices,
        blank=True,
        default=Variant.NONE,
        help_text="How the served pixels differ from the image's render (checks only).",
    )
    render = models.CharField(
        max_length=300,
        blank=True,
        default="",
        help_text="Storage name of the exact bytes this trial serves (made before it is requested).",
    )
    shown_at = models.DateTimeField(null=True, blank=True, help_text="When the server first sent this trial.")
    window_opened_at = models.DateTimeField(
        null=True, blank=True, help_text="Timed studies: the first image request, which opens the viewing window."
    )

    class Meta:
        ordering = ["session_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["session", "index"], name="trial_unique_index_in_session"),
            models.CheckConstraint(
                condition=(Q(attention_check="repeat") & Q(repeat_of__isnull=False))
                | (~Q(attention_check="repeat") & Q(repeat_of__isnull=True)),
                name="trial_repeat_of_iff_repeat_check",
            ),
            models.CheckConstraint(
                condition=Q(is_practice=False) | Q(attention_check=""),
                name="trial_practice_is_not_attention_check",
            ),
            models.CheckConstraint(
                condition=Q(is_qualification=False) | (Q(attention_check="") & Q(is_practice=False)),
                name="trial_qualification_is_its_own_block",
            ),
        ]

    def __str__(self) -> str:
        return f"trial {self.index} of session {self.session_id}"

    @property
    def is_analysed(self) -> bool:
        """Counts in the main analysis: not practice, not qualification, not an attention check."""
        return not self.is_practice and not self.is_qualification and not self.attention_check


class Response(models.Model):
    """The one answer to a trial; the one-to-one key makes the database refuse a second."""

    trial = models.OneToOneField(Trial, on_delete=models.CASCADE, related_name="response")
    judged_real = models.BooleanField(null=True, blank=True, help_text="None when the study does not ask.")
    confidence = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1 guessing, 2 fairly sure, 3 certain.")
    quality = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="ACR: 1 bad, 2 poor, 3 fair, 4 good, 5 excellent."
    )
    choice = models.CharField(
        max_length=5, blank=True, default="", help_text="2AFC: the side the rater chose as real (left/right)."
    )
    diagnosis = models.CharField(max_length=16, blank=True, default="", help_text="Diagnosis: benign or malignant.")
    subtype = models.CharField(max_length=32, blank=True, default="")
    marks = models.JSONField(
        default=list, blank=True, help_text="Mark: points and boxes in normalised image coordinates."
    )
    client_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Browser: from the image being displayed to the answer being sent."
    )
    server_ms = models.PositiveIntegerField(help_text="Server: from the trial page being first sent to the answer arriving.")
    onscreen_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Browser: how long the image was on screen (until the mask, or the answer)."
    )
    paint_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Browser: from asking for the trial (the page's navigation, or sending the previous answer whose reply brought it) to the image first drawn."
    )
    zoom_max = models.FloatField(
        null=True, blank=True, help_text="Browser: the highest magnification reached, in screen (device) pixels per image pixel (1.0 = 1:1)."
    )
    zoomed_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Browser: time spent zoomed in beyond the whole-field view while the image was shown."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["trial_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quality__isnull=True) | Q(quality__gte=1, quality__lte=5), name="response_quality_1_to_5"
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=1, confidence__lte=6),
                name="response_confidence_1_to_6",
            ),
            models.CheckConstraint(
                condition=Q(judged_real__isnull=False) | Q(quality__isnull=False) | ~Q(choice="") | ~Q(diagnosis=""),
                name="response_answers_something",
            ),
        ]

    def __str__(self) -> str:
        return f"response to {self.trial}"


class Render(models.Model):
    """The exact bytes served for one image under one presentation (see ``rendering``), made before any request.

    ``presentation`` is :attr:`Study.presentation_key`; studies with the same presentation share renders.
    """

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="renders")
    presentation = models.CharField(max_length=64)
    name = models.CharField(max_length=300, help_text="Storage name of the served PNG.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "presentation"], name="render_unique_image_presentation")
        ]

    def __str__(self) -> str:
        return f"render of image {self.image_id} ({self.presentation[:8]})"


class ConsentRecord(models.Model):
    """A rater's agreement to one version of a study's consent text: which text (by hash), and when."""

    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="consents")
    version = models.PositiveIntegerField()
    text_sha256 = models.CharField(max_length=64)
    agreed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["rater_id", "version"]
        constraints = [models.UniqueConstraint(fields=["rater", "version"], name="consent_once_per_version")]

    def __str__(self) -> str:
        return f"consent of rater {self.rater_id} to version {self.version}"


class Withdrawal(models.Model):
    """The audit trace of a rater's withdrawal: what was done, when, to how many answers; nothing personal."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="withdrawals")
    withdrawn_at = models.DateTimeField(default=timezone.now)
    mode = models.CharField(max_length=16, choices=Study.Withdrawal.choices)
    responses = models.PositiveIntegerField(help_text="Answers deleted, or kept without the profile.")
    design_version = models.PositiveIntegerField()

    class Meta:
        ordering = ["study_id", "withdrawn_at"]

    def __str__(self) -> str:
        return f"withdrawal from {self.study} ({self.mode}, {self.responses} answers)"
