from __future__ import annotations

import pytest

from ratingstudy.studies.models import Rater, Study
from ratingstudy.studies.services import rater_profile_update, raters_create
from tests.ratingstudy.studies.factories import study_make


@pytest.fixture
def study(db, tmp_path) -> Study:
    return study_make(directory=tmp_path)


@pytest.fixture
def rater(study) -> Rater:
    return raters_create(study=study, count=1)[0]


@pytest.fixture
def profiled_rater(rater) -> Rater:
    return rater_profile_update(rater=rater, role="pathologist", years_experience=12, specialty="breast", consented=False)
