"""metric_report_store: per-image values land on the right catalogue images."""

from __future__ import annotations

import pytest

from ratingstudy.catalog.models import ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.results.models import ImageMetric, MetricReport
from ratingstudy.results.services import metric_report_store
from tests.ratingstudy.results.factories import image_set_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def sets():
    real = image_set_create(name="real", kind=ImageSet.Kind.REAL, n=4)
    generated = image_set_create(name="vgg-out", model_name="vgg16-cyclegan", n=4, sources=list(real.images.order_by("source_path")))
    return real, generated


def _values(report: MetricReport, name: str) -> dict[str, float]:
    return dict(
        ImageMetric.objects.filter(report=report, name=name).values_list("image__source_path", "value")
    )


def test_maps_by_source_path_source_image_and_file_name(sets):
    real, generated = sets
    fakes = list(generated.images.order_by("source_path"))
    sources = [f.source_image.source_path for f in fakes]
    report = {
        "settings": {"extractor": {"name": "inception-v3"}},
        "per_image": [
            {"path": fakes[0].source_path, "ssim": 0.9},  # 1. exact path in the set
            {"path": "elsewhere/x.png", "source": sources[1], "ssim": 0.8},  # 2. its source image's path
            {"path": "/tmp/out/" + fakes[2].source_path.rsplit("/", 1)[1], "ssim": 0.7},  # 3. file name
            {"path": "gen/" + fakes[3].source_path.rsplit("/", 1)[1].replace(".png", ".jpg"), "ssim": 0.6},  # 3. stem
            {"path": "nowhere.png", "ssim": 0.1},
        ],
    }
    stored = metric_report_store(image_set=generated, report=report, job_id=7)
    assert stored.model_name == "vgg16-cyclegan" and stored.extractor == "inception-v3" and stored.job_id == 7
    assert _values(stored, "ssim") == {fakes[i].source_path: v for i, v in enumerate([0.9, 0.8, 0.7, 0.6])}
    assert stored.mapping == {"records": 5, "matched": 4, "unmatched": 1, "unmatched_examples": ["nowhere.png"]}


def test_mapping_form_nested_values_and_nan(sets):
    _, generated = sets
    fake = generated.images.order_by("source_path").first()
    report = {
        "aggregates": {"ssim": float("nan")},
        "per_image": {fake.source_path: {"translation": {"ssim": 0.5, "psnr": float("inf")}, "cycle": {"ssim": 0.8}, "label": "x"}},
    }
    stored = metric_report_store(image_set=generated, report=report)
    assert dict(ImageMetric.objects.filter(report=stored).values_list("name", "value")) == {"translation.ssim": 0.5, "cycle.ssim": 0.8}
    assert stored.report["aggregates"]["ssim"] is None  # NaN stored as null


def test_models_section_picks_the_sets_model(sets):
    _, generated = sets
    fake = generated.images.order_by("source_path").first()
    report = {
        "models": {
            "plain-cyclegan": {"aggregates": {"ssim": 0.1}, "per_image": [{"path": "other.png", "ssim": 0.1}]},
            "vgg16-cyclegan": {"aggregates": {"ssim": 0.4}, "per_image": [{"path": fake.source_path, "ssim": 0.4}]},
        }
    }
    stored = metric_report_store(image_set=generated, report=report)
    assert _values(stored, "ssim") == {fake.source_path: 0.4}


def test_real_set_is_the_real_row(sets):
    real, _ = sets
    stored = metric_report_store(image_set=real, report={"aggregates": {"fid": 1.0}})
    assert stored.model_name == "real"


def test_retry_with_same_job_replaces_not_duplicates(sets):
    _, generated = sets
    fake = generated.images.order_by("source_path").first()
    first = metric_report_store(image_set=generated, report={"per_image": [{"path": fake.source_path, "ssim": 0.1}]}, job_id=3)
    second = metric_report_store(image_set=generated, report={"per_image": [{"path": fake.source_path, "ssim": 0.2}]}, job_id=3)
    assert first.pk == second.pk
    assert MetricReport.objects.count() == 1
    assert _values(second, "ssim") == {fake.source_path: 0.2}
    metric_report_store(image_set=generated, report={}, job_id=4)
    assert MetricReport.objects.count() == 2


def test_report_matching_nothing_is_refused(sets):
    _, generated = sets
    with pytest.raises(ApplicationError, match="none of the 2 per-image records"):
        metric_report_store(image_set=generated, report={"per_image": [{"path": "a.png", "ssim": 1}, {"path": "b.png", "ssim": 1}]})
    assert MetricReport.objects.count() == 0


@pytest.mark.parametrize(
    ("cost", "message"),
    [
        ({"gpu_hours": 3}, "unknown cost field"),
        ({"parameters": 1.5}, "must be an integer"),
        ({"train_seconds": -1}, ">= 0"),
        ({"device": 3}, "must be a string"),
        ({"images_per_s": float("nan")}, "finite"),
    ],
)
def test_cost_is_validated(sets, cost, message):
    _, generated = sets
    with pytest.raises(ApplicationError, match=message):
        metric_report_store(image_set=generated, report={}, cost=cost)


def test_report_must_be_an_object(sets):
    _, generated = sets
    with pytest.raises(ApplicationError, match="JSON object"):
        metric_report_store(image_set=generated, report=[1, 2])  # type: ignore[arg-type]


def test_cost_is_stored(sets):
    _, generated = sets
    cost = {"parameters": 11_378_179, "train_seconds": 3600.5, "images_per_s": 42.0, "peak_gpu_mem_bytes": 2**33, "device": "NVIDIA H100"}
    assert metric_report_store(image_set=generated, report={}, cost=cost).cost == cost
