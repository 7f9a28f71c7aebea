from __future__ import annotations

import pytest
from django.core.management import call_command

from ratingstudy.catalog.models import ImageSet


@pytest.fixture
def tiny_set(db) -> ImageSet:
    call_command(
        "seed_demo",
        "--train-per-class",
        "4",
        "--test-per-class",
        "2",
        "--size",
        "32",
        "--name",
        "tiny",
    )
    return ImageSet.objects.get(name="tiny")


@pytest.fixture
def staff_client(client):
    """A researcher who operates jobs (a staff flag alone opens nothing)."""
    from tests.ratingstudy.jobs.helpers import OPERATOR_PERMISSIONS, staff_with

    client.force_login(staff_with("researcher", *OPERATOR_PERMISSIONS))
    return client
