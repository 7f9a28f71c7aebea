"""Results views: staff only, page and polled JSON, offline plotly, exports through pandas."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse

from ratingstudy.results import views
from ratingstudy.results.export_selectors import RESPONSE_COLUMNS
from ratingstudy.results.services import metric_report_store
from ratingstudy.studies.models import Response
from tests.ratingstudy.results.factories import plain_user, simulated_study, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim():
    return simulated_study(n_raters=3, n_images=4, unrated=1)


@pytest.fixture
def staff_client(client):
    client.force_login(staff_user())
    return client


def _urls(study_id: int) -> list[str]:
    return [
        reverse("results:index"),
        reverse("results:plotly"),
        reverse("results:study", args=[study_id]),
        reverse("results:data", args=[study_id]),
        reverse("results:export_manifest", args=[study_id]),
    ] + [
        reverse(f"results:export_{name}", args=[study_id, fmt])
        for name in ("responses", "images", "models")
        for fmt in ("csv", "json")
    ]


def test_anonymous_and_non_staff_are_sent_to_login(client, sim):
    urls = _urls(sim.study.pk)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
    client.force_login(plain_user())
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


def test_staff_gets_every_url(staff_client, sim):
    for url in _urls(sim.study.pk):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        if response.streaming:
            b"".join(response.streaming_content)


def test_unknown_study_and_format_are_404(staff_client, sim):
    assert staff_client.get(reverse("results:study", args=[999])).status_code == 404
    assert staff_client.get(reverse("results:export_responses", args=[sim.study.pk, "xlsx"])).status_code == 404


def test_page_shows_tables_and_loads_plotly_from_this_site(staff_client, sim):
    response = staff_client.get(reverse("results:study", args=[sim.study.pk]))
    html = response.content.decode()
    assert "Human ratings per model" in html and "vgg16-cyclegan" in html and "Real images" in html
    assert f'src="{reverse("results:plotly")}"' in html
    assert "cdn" not in html.lower() and "https://" not in html
    assert 'id="results-data"' in html  # the embedded results the charts start from


def test_plotly_is_the_installed_file(staff_client):
    response = staff_client.get(reverse("results:plotly"))
    body = b"".join(response.streaming_content)
    assert body == views.plotly_path().read_bytes()
    assert response["Content-Type"].startswith("text/javascript")


def test_data_json_updates_with_new_answers(staff_client, sim):
    url = reverse("results:data", args=[sim.study.pk])
    first = staff_client.get(url).json()
    assert set(first) == {"version", "results", "freshness", "tables_html"}
    assert "Agreement between raters" in first["tables_html"]
    trial = Response.objects.filter(trial__session__rater=sim.raters[0]).first().trial
    from tests.ratingstudy.results.factories import answer

    answer(rater=sim.raters[0], image=trial.image, index=500, judged_real=True, quality=5)
    second = staff_client.get(url).json()
    assert second["version"] != first["version"]
    assert second["results"]["counts"]["responses"] == first["results"]["counts"]["responses"] + 1


def test_switches_and_widths_from_the_query_string(staff_client, sim):
    url = reverse("results:data", args=[sim.study.pk])
    default = staff_client.get(url).json()["results"]
    switched = staff_client.get(url, {"include_failed": "1", "include_practice": "1", "mos_width": "0.2"}).json()["results"]
    assert switched["filters"]["include_failed_checks"] and switched["filters"]["include_practice"]
    assert switched["counts"]["analysed"] > default["counts"]["analysed"]
    plain = switched["models"][0]["sample_size"]["quality"]
    assert plain["width"] == 0.2 and plain["needed"] > default["models"][0]["sample_size"]["quality"]["needed"]
    bad = staff_client.get(url, {"mos_width": "-1"})
    assert bad.status_code == 400 and "mos_width" in bad.json()["error"]
    page = staff_client.get(reverse("results:study", args=[sim.study.pk]), {"share_width": "abc"})
    assert page.status_code == 400 and "share_width must be a number" in page.content.decode()


def _download(client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200 and response.streaming
    return b"".join(response.streaming_content)


def _read_responses_csv(data: bytes) -> pd.DataFrame:
    dtypes = {name: dtype for name, dtype in RESPONSE_COLUMNS.items() if dtype != "datetime"}
    dates = [name for name, dtype in RESPONSE_COLUMNS.items() if dtype == "datetime"]
    frame = pd.read_csv(io.BytesIO(data), dtype=dtypes, keep_default_na=False, na_values=[""])
    for name in dates:
        frame[name] = pd.to_datetime(frame[name], format="ISO8601", utc=True)
    return frame


def test_responses_csv_round_trips_through_pandas(staff_client, sim):
    data = _download(staff_client, reverse("results:export_responses", args=[sim.study.pk, "csv"]))
    frame = _read_responses_csv(data)
    responses = Response.objects.filter(trial__session__study=sim.study).order_by("trial__session_id", "trial__index")
    assert list(frame.columns) == list(RESPONSE_COLUMNS)
    assert len(frame) == responses.count()
    assert frame.is_practice.sum() == 1 and (frame.attention_check == "corrupted").sum() == 3
    assert frame.rater_failed_checks.sum() == (frame.rater_id == f"R{sim.failing_rater.pk:04d}").sum() > 0
    assert frame.quality.dtype == "Int64" and frame.judged_real.dtype == "boolean"
    assert str(frame.answered_at.dtype).startswith("datetime64")
    assert frame.rater_years_experience.isna().sum() == 0  # raters 0-2 have years
    first = responses.first()
    assert frame.quality.iloc[0] == first.quality
    assert frame.answered_at.iloc[0] == pd.Timestamp(first.created_at)
    assert set(frame.model) == {"real", "plain-cyclegan", "resnet50-cyclegan", "vgg16-cyclegan"}
    assert "token" not in data.decode().lower()
    repeat = frame[frame.attention_check == "repeat"].iloc[0]
    assert not pd.isna(repeat.repeat_of_index)


def test_responses_json_matches_csv(staff_client, sim):
    csv_frame = _read_responses_csv(_download(staff_client, reverse("results:export_responses", args=[sim.study.pk, "csv"])))
    data = _download(staff_client, reverse("results:export_responses", args=[sim.study.pk, "json"]))
    records = json.loads(data)
    assert len(records) == len(csv_frame)
    json_frame = pd.DataFrame.from_records(records)
    assert list(json_frame.columns) == list(RESPONSE_COLUMNS)
    assert json_frame.quality.tolist() == csv_frame.quality.astype(object).where(csv_frame.quality.notna(), None).tolist()
    assert json_frame.judged_real.tolist() == [None if pd.isna(v) else bool(v) for v in csv_frame.judged_real]
    assert pd.to_datetime(json_frame.answered_at, utc=True).equals(csv_frame.answered_at)


def test_per_image_export_has_every_image_and_metrics(staff_client, sim):
    fakes = list(sim.sets["plain-cyclegan"].images.order_by("source_path"))
    metric_report_store(
        image_set=sim.sets["plain-cyclegan"],
        report={"per_image": [{"path": f.source_path, "ssim": 0.5 + i / 10} for i, f in enumerate(fakes)]},
    )
    data = _download(staff_client, reverse("results:export_images", args=[sim.study.pk, "csv"]))
    frame = pd.read_csv(io.BytesIO(data))
    assert len(frame) == 4 * 4 + 1  # every image of the study's sets, the unrated one included
    unrated = frame[frame.image_id == sim.unrated[0].pk].iloc[0]
    assert unrated.n_raters == 0 and np.isnan(unrated.mean_quality)
    plain = frame[frame.model == "plain-cyclegan"].sort_values("source_path")
    assert plain["metric:ssim"].tolist() == pytest.approx([0.5, 0.6, 0.7, 0.8])
    answers = Response.objects.filter(
        trial__image=fakes[0], trial__attention_check="", trial__is_practice=False
    ).exclude(trial__session__rater=sim.failing_rater)
    expected = np.mean([r.quality for r in answers])
    assert plain.iloc[0].mean_quality == pytest.approx(expected)
    as_json = json.loads(_download(staff_client, reverse("results:export_images", args=[sim.study.pk, "json"])))
    assert len(as_json) == len(frame)


def test_per_model_export_matches_page_numbers(staff_client, sim):
    results = staff_client.get(reverse("results:data", args=[sim.study.pk])).json()["results"]
    frame = pd.read_csv(io.BytesIO(_download(staff_client, reverse("results:export_models", args=[sim.study.pk, "csv"]))))
    assert frame.model.tolist() == [row["name"] for row in results["models"]]
    assert frame.mos.tolist() == pytest.approx([row["mos"]["value"] for row in results["models"]])
    assert frame.judged_real_low.tolist() == pytest.approx([row["judged_real"]["low"] for row in results["models"]])
    assert frame.is_real.dtype == bool
    records = json.loads(_download(staff_client, reverse("results:export_models", args=[sim.study.pk, "json"])))
    assert [r["model"] for r in records] == frame.model.tolist()


def test_manifest_names_design_seeds_hashes_and_versions(staff_client, sim):
    metric_report_store(image_set=sim.sets["vgg16-cyclegan"], report={"settings": {"extractor": "inception-v3", "seed": 3}}, job_id=12)
    manifest = staff_client.get(reverse("results:export_manifest", args=[sim.study.pk])).json()
    assert manifest["study"]["seed"] == 1234
    assert manifest["design"]["images_per_rater"] == sim.study.images_per_rater
    assert [s["seed"] for s in manifest["sessions"]] == [r.session.seed for r in sim.raters]
    vgg = next(s for s in manifest["image_sets"] if s["name"] == "vgg16-cyclegan-set")
    assert len(vgg["checkpoint_sha256"]) == 1 and len(vgg["checkpoint_sha256"][0]) == 64
    assert manifest["metric_reports"][0]["settings"] == {"extractor": "inception-v3", "seed": 3}
    assert manifest["metric_reports"][0]["job_id"] == 12
    assert {"python", "Django", "numpy", "scipy", "statsmodels", "krippendorff"} <= set(manifest["software"])
    assert manifest["columns"]["responses"] == RESPONSE_COLUMNS


def test_export_streams_in_chunks(staff_client, sim, monkeypatch):
    monkeypatch.setattr("ratingstudy.results.exports.BATCH", 5)
    from ratingstudy.results import exports

    chunks = list(exports.csv_chunks(header=["a"], rows=([i] for i in range(12)), batch=5))
    assert chunks == ["a\n0\n1\n2\n3\n4\n", "5\n6\n7\n8\n9\n", "10\n11\n"]
    assert "".join(exports.json_chunks(header=["a"], rows=iter([]), batch=5)) == "[\n]\n"
    assert json.loads("".join(exports.json_chunks(header=["a", "b"], rows=([i, None] for i in range(7)), batch=3))) == [
        {"a": i, "b": None} for i in range(7)
    ]


def test_rater_free_text_cannot_become_a_spreadsheet_formula(staff_client, sim):
    rater = sim.raters[0]
    rater.specialty = '=HYPERLINK("http://evil.example","x")'
    rater.save()
    frame = _read_responses_csv(_download(staff_client, reverse("results:export_responses", args=[sim.study.pk, "csv"])))
    mine = frame[frame.rater_id == f"R{rater.pk:04d}"].rater_specialty
    assert set(mine) == {"'" + rater.specialty}
    assert set(frame[frame.rater_id != f"R{rater.pk:04d}"].rater_specialty) == {"breast"}
