"""reproduce_founding_study: refusals before anything is written, and the whole run end to end.

The end-to-end test imports a miniature BreakHis tree, trains the deck's three models for
one epoch at 64 px with random encoders through a real Celery worker, lets people rate,
and reads the four tables back from the report page, its CSV and its Markdown.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.jobs.models import Comparison, Experiment, Job
from ratingstudy.results.founding import _study_design
from ratingstudy.results.founding_report import DECK
from ratingstudy.results.founding_selectors import FoundingSettings, founding_study_name
from ratingstudy.results.reports import model_section
from ratingstudy.results.selectors import study_results
from ratingstudy.studies.models import Study
from tests.ratingstudy.catalog.test_importers import make_breakhis_tree
from tests.ratingstudy.results.factories import answer, rater_create

TINY = ["--epochs", "1", "--image-size", "64", "--train-per-class", "8", "--test-per-class", "3",
        "--classifier-epochs", "1", "--fcn-steps", "10"]  # fmt: skip


def test_missing_imagenet_weights_stop_it_before_anything_is_written(db, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    root = make_breakhis_tree(tmp_path)
    with pytest.raises(CommandError) as error:
        call_command("reproduce_founding_study", root, *TINY, "--no-wait")
    message = str(error.value)
    expected = tmp_path / "torch" / "hub" / "checkpoints"
    assert "put vgg16-397923af.pth" in message and str(expected / "vgg16-397923af.pth") in message
    assert str(expected / "resnet50-0676ba61.pth") in message
    assert "--encoder-weights random" in message and "never downloads" in message
    assert not ImageSet.objects.exists() and not Comparison.objects.exists()
    assert not Job.objects.exists()


def test_bad_settings_are_listed_together():
    problems = FoundingSettings(breakhis_root="x", image_size=48, epochs=0, presets=("pix2pix",)).problems()
    assert any("image_size must be a multiple of 32 from 64" in p for p in problems)
    assert any("epochs must be at least 1" in p for p in problems)
    assert any("presets must be some of cyclegan" in p for p in problems)


def test_study_design_fits_the_pools_the_studies_app_holds_out():
    # the deck: 20 real test images; 3 models x (10 + 10) translations
    assert _study_design(20, {"a": 20, "b": 20, "c": 20}) == {
        "images_per_rater": 36, "practice_trials": 4, "corrupted_checks": 2, "repeat_checks": 2,
    }  # fmt: skip
    assert _study_design(6, {"a": 6, "b": 6, "c": 6})["images_per_rater"] == 10


def staff(django_user_model, username: str, *permissions: str):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(username, password="pw-123456", is_staff=True)
    for dotted in permissions:
        app_label, codename = dotted.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def test_the_admin_template_launches_a_run_and_roles_hold(
    db, redis_url, tmp_path, monkeypatch, admin_client, client, django_user_model
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    root = make_breakhis_tree(tmp_path)
    assert "/results/founding/launch/" in admin_client.get("/admin/jobs/experiment/").content.decode()
    fields = {
        "breakhis_root": str(root), "name": "from-admin", "presets": ["cyclegan", "vgg16-cyclegan"],
        "encoder_weights": "imagenet", "epochs": 2, "image_size": 64, "batch_size": 1, "seed": 0,
        "train_per_class": 8, "test_per_class": 3, "min_test_patients": 3, "classifier_epochs": 1,
        "fcn_steps": 10,
    }  # fmt: skip
    refused = admin_client.post("/results/founding/launch/", fields)
    assert refused.status_code == 200 and "vgg16-397923af.pth" in refused.content.decode()
    assert not Comparison.objects.exists()
    launched = admin_client.post("/results/founding/launch/", {**fields, "encoder_weights": "random"})
    comparison = Comparison.objects.get(name="from-admin")
    assert launched.status_code == 302 and launched["Location"] == f"/results/founding/{comparison.pk}/"
    assert comparison.experiments.count() == 2
    assert sorted(Job.objects.values_list("kind", flat=True)) == ["classify", "train", "train"]
    train = Job.objects.filter(kind="train").first()
    assert (train.config["n_epochs"], train.config["n_epochs_decay"], train.config["load_size"]) == (1, 1, 72)
    page = admin_client.get(f"/results/founding/{comparison.pk}/").content.decode()
    assert "0 of 13 jobs done" in page and 'http-equiv="refresh"' in page and "0.6787" in page

    viewer = staff(django_user_model, "viewer", "studies.view_results")
    client.force_login(viewer)
    assert client.get(f"/results/founding/{comparison.pk}/").status_code == 200
    assert client.get(f"/results/founding/{comparison.pk}/report.md").status_code == 200
    assert client.get("/results/founding/launch/").status_code == 403
    client.force_login(staff(django_user_model, "nobody"))
    assert client.get(f"/results/founding/{comparison.pk}/").status_code == 403
    assert client.get("/results/founding/").status_code == 403


@pytest.mark.slow
@pytest.mark.worker
def test_the_founding_study_end_to_end(
    transactional_db, celery_worker, tmp_path, admin_client, artifacts_dir
):
    root = make_breakhis_tree(tmp_path)  # 6 patients and 24 images per class at 400X
    report_url = call_command(
        "reproduce_founding_study", root, *TINY, "--encoder-weights", "random", "--name", "tiny",
        "--timeout", "20",
    )  # fmt: skip
    comparison = Comparison.objects.get(name="tiny")
    assert report_url == f"/results/founding/{comparison.pk}/"
    experiments = {e.grid["preset"][0]: e for e in Experiment.objects.filter(comparison=comparison)}
    assert set(experiments) == {"cyclegan", "vgg16-cyclegan", "resnet50-cyclegan"}
    assert [experiments[p].grid["semi_supervised"] for p in sorted(experiments)] == [[False], [True], [True]]
    jobs = Job.objects.all()
    assert jobs.count() == 19 and set(jobs.values_list("status", flat=True)) == {"succeeded"}
    real = ImageSet.objects.get(name="tiny-breakhis-400X")
    assert real.images.filter(split="train").count() == 16 and real.images.filter(split="test").count() == 6

    # the rating study: real test images resized as the generators saw them, every model's translations
    study = Study.objects.get(name=founding_study_name("tiny"))
    (rated,) = study.real_image_sets.all()
    assert {(i.width, i.height) for i in rated.images.all()} == {(64, 64)} and rated.images.count() == 6
    generated = study.generated_image_sets.all()
    assert generated.count() == 6 and {s.model_name for s in generated} == {e.name for e in experiments.values()}
    assert {i.label for s in generated for i in s.images.all()} == {"benign", "malignant"}

    # two raters answer: their mean quality and share judged real must reach the report
    images = list(Image.objects.filter(image_set__in=[rated, *generated]).order_by("pk"))
    for r, rater in enumerate([rater_create(study=study), rater_create(study=study)]):
        for index, image in enumerate(images):
            answer(rater=rater, image=image, index=index, judged_real=(index + r) % 3 != 0,
                   quality=1 + (index * 7 + r) % 5)  # fmt: skip
    results = {row["name"]: row for row in study_results(study=study)["models"]}

    page = admin_client.get(report_url)
    assert page.status_code == 200
    tables = {t["key"]: t for t in page.context["report"]["tables"]}
    rows = {(row["model"], row["method"]): row for t in tables.values() for row in t["rows"]}
    vgg = experiments["vgg16-cyclegan"]
    evaluate = Job.objects.get(kind=Job.Kind.EVALUATE, experiment=vgg)
    section = model_section(evaluate.metric_report.report, evaluate.metric_report.model_name)
    fcn = rows[("VGG-16 CycleGAN", "FCN on G(x) vs labels of x")]
    assert fcn["values"]["iou"] == section["fcn_score"]["generated"]["mean_iou"]
    assert fcn["deck"] == DECK["fcn"]["VGG-16 CycleGAN"]
    quality = rows[("VGG-16 CycleGAN", "x vs G(x)")]
    assert quality["values"]["ssim"] == section["translation"]["ssim"]["mean"]
    head = rows[("VGG-16 CycleGAN", "discriminator class head (semi-supervised)")]
    assert head["values"]["accuracy"] == evaluate.metric_report.report["classifiers"][vgg.name]["accuracy"]
    simple = experiments["cyclegan"]
    classifier = Job.objects.get(kind=Job.Kind.CLASSIFY, config__synthetic_image_set=Job.objects.get(
        kind=Job.Kind.GENERATE, parent__experiment=simple, config__split="train").output_image_set_id)  # fmt: skip
    row = rows[("Simple CycleGAN", "classifier, real + this model's synthetic training images")]
    assert row["values"]["f1"] == classifier.result["test"]["f1"] and row["deck"]["precision"] == 1.0
    assert ("Real images only", "classifier, real training images (baseline)") in rows
    rating = {row["model"]: row for row in tables["rating"]["rows"]}
    assert rating["Real images"]["values"]["quality"] == results["real"]["mos"]["value"]
    assert rating["ResNet-50 CycleGAN"]["values"]["judged_real"] == pytest.approx(
        results[experiments["resnet50-cyclegan"].name]["judged_real"]["value"]
    )
    assert rating["ResNet-50 CycleGAN"]["deck"] == {"quality": 2.85, "judged_real": 0.50}
    cost = {row["model"]: row["values"] for row in tables["cost"]["rows"]}
    train = Job.objects.get(kind=Job.Kind.TRAIN, experiment=experiments["resnet50-cyclegan"])
    assert cost["ResNet-50 CycleGAN"]["parameters"] == sum(train.result["parameter_counts"].values())
    assert cost["ResNet-50 CycleGAN"]["images_per_s"] > 0 and cost["Simple CycleGAN"]["train_minutes"] > 0
    text = page.content.decode()
    assert "0.9036" in text and "Every model is trained" in text and 'http-equiv="refresh"' not in text

    table = list(csv.reader(io.StringIO(admin_client.get(report_url + "report.csv").content.decode())))
    assert table[0] == ["table", "model", "method", "metric", "ours", "published"]
    by_cell = {(r[0], r[1], r[2], r[3]): r for r in table[1:]}
    cell = by_cell[("fcn", "VGG-16 CycleGAN", "FCN on G(x) vs labels of x", "iou")]
    assert float(cell[4]) == fcn["values"]["iou"] and float(cell[5]) == 0.6787
    markdown = admin_client.get(report_url + "report.md").content.decode()
    (artifacts_dir / "founding-report-tiny.md").write_text(markdown)  # for people to read
    assert markdown.startswith("# Founding study reproduction: tiny")
    assert "## Rating and real/fake judgment" in markdown and "(2.85)" in markdown
    # running the command again follows the same run instead of launching a second one
    assert call_command("reproduce_founding_study", root, "--name", "tiny", "--no-wait") == report_url
    assert Job.objects.count() == 19
