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
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user("researcher", password="pw-123456", is_staff=True)
    client.force_login(user)
    return client
