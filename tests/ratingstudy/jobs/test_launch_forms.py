"""The admin's launch forms speak plainly: a human label for every config field, and each job
kind's page shows only the help that is about that kind."""

from __future__ import annotations

import re

import pytest

from ratingstudy.jobs.configs import SCHEMAS
from ratingstudy.jobs.forms import LABELS, ExperimentLaunchForm
from ratingstudy.jobs.models import Job


def test_every_config_field_has_a_label():
    for kind, schema in SCHEMAS.items():
        assert set(LABELS[kind]) == set(schema), kind  # a new field needs a label too


@pytest.mark.parametrize("kind", Job.Kind.values)
def test_launch_page_shows_labels_and_only_its_own_help(kind, admin_client):
    page = admin_client.get(f"/admin/jobs/job/launch/{kind}/").content.decode()
    labels = re.findall(r'<label for="id_[^"]+">([^<]+)</label>', page)
    assert not [label for label in labels if label.startswith("Cfg") or "_" in label], labels
    for name, label in LABELS[kind].items():
        assert f">{label}</label>" in page, name
    others = [k for k in Job.Kind.values if k != kind]
    for other in others:  # another kind's own wording never appears here
        assert f"{other}: " not in page.lower()
    if kind == "train":
        assert "the real images to train on" in page and "Epochs at the starting learning rate" in page
    if kind == "classify":
        assert "scored on their test split" in page and "images to translate" not in page
    if kind == "generate":
        assert "the images to translate" in page and "train on" not in page


def test_experiment_form_labels_say_which_job_they_set(db):
    labels = {name: field.label for name, field in ExperimentLaunchForm().fields.items()}
    assert labels["cfg_n_epochs"] == "Train: Epochs at the starting learning rate"
    assert labels["gen_direction"] == "Generate: Direction"
    assert labels["eval_feature_extractor"] == "Evaluate: FID/KID feature extractor"
    assert not any(label.startswith(("train: ", "Cfg")) for label in labels.values() if label)
