"""Crash safety of imports: staged files, SIGKILLed imports, the sweep and running imports.

Imports run as real ``manage.py`` subprocesses on the test database and media root,
and are killed with SIGKILL at the moments that matter: while staging, after the
files were moved into place but before the commit, and after the commit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command

from ganlab.data.imageio import encode_png
from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.catalog.services import ImageEntry, image_set_import
from ratingstudy.catalog.staging import staging_sweep
from tests.ratingstudy.catalog.test_importers import media_files

ROOT = Path(__file__).resolve().parents[3]


def folder_of_tiles(folder: Path, count: int) -> Path:
    """``count`` distinct 64x64 noise PNGs (distinct, so every one is its own stored file)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        (folder / f"tile_{index:04d}.png").write_bytes(encode_png(pixels))
    return folder


def manage(args: list[str], *, database_url: str, tmp_path: Path) -> subprocess.Popen:
    """``manage.py ARGS`` as a subprocess on the test database and media root."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def staging_folder_of(pid: int, *, with_images: bool = True) -> Path | None:
    """The staging folder whose owner.json names process ``pid`` (once it holds a staged image)."""
    staging = Path(settings.MEDIA_ROOT) / "staging"
    for folder in staging.iterdir() if staging.exists() else []:
        try:  # the folder may be half-written, or removed while we look
            owner = json.loads((folder / "owner.json").read_text())
            if owner["pid"] == pid and (not with_images or any(folder.rglob("*.png"))):
                return folder
        except (OSError, ValueError):
            continue
    return None


def wait_for_staged_files(process: subprocess.Popen, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        folder = staging_folder_of(process.pid)
        if folder is not None:
            return folder
        if process.poll() is not None:
            pytest.fail(f"the import ended before staging anything:\n{process.stdout.read()}")
        time.sleep(0.005)
    process.kill()
    pytest.fail("the import staged nothing within 60 s")


def files_of_import(import_id: str) -> list[Path]:
    return [path for path in media_files() if import_id in str(path)]


@pytest.mark.django_db(transaction=True)
def test_import_killed_while_staging_leaves_nothing_after_the_sweep(tmp_path, database_url):
    folder = folder_of_tiles(tmp_path / "tiles", 300)
    before = set(media_files())
    process = manage(
        ["import_folder", str(folder), "--label", "benign", "--name", "killed"],
        database_url=database_url,
        tmp_path=tmp_path,
    )
    staged = wait_for_staged_files(process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL  # killed midway, not finished
    import_id = staged.name
    orphans = files_of_import(import_id)
    assert any(path.suffix == ".png" for path in orphans)  # the crash left files behind

    call_command("sweep_staging")

    assert files_of_import(import_id) == []
    assert not staged.exists()
    assert set(media_files()) <= before
    assert not ImageSet.objects.filter(name="killed").exists()
    assert Image.objects.count() == 0


def _run_killed_at(
    patch: str, *, folder: Path, name: str, database_url: str, tmp_path: Path
) -> Path:
    """Run import_folder in a subprocess where ``patch`` makes a call SIGKILL the process;
    the staging folder it left."""
    code = (
        "import os, signal\n"
        "def kill(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        f"{patch}\n"
        "from django.core.management import call_command\n"
        f"call_command('import_folder', {str(folder)!r}, '--label', 'benign', '--name', {name!r})\n"
    )
    process = manage(
        ["shell", "--no-imports", "-c", code], database_url=database_url, tmp_path=tmp_path
    )
    output, _ = process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL, output
    staged = staging_folder_of(process.pid, with_images=False)
    assert staged is not None
    return staged


def test_import_killed_after_publishing_before_commit_leaves_nothing_after_the_sweep(
    tmp_path, database_url
):
    folder = folder_of_tiles(tmp_path / "tiles", 20)
    before = set(media_files())
    # the files are in images/ when the rows are about to be inserted
    staged = _run_killed_at(
        "from ratingstudy.catalog.models import Image; Image.objects.bulk_create = kill",
        folder=folder,
        name="published",
        database_url=database_url,
        tmp_path=tmp_path,
    )
    published = [p for p in set(media_files()) - before if "/images/" in str(p)]
    assert len(published) == 20 and not any("staging" in str(p) for p in published)

    report = staging_sweep()

    assert staged.name in report.removed and report.published_files_deleted == 20
    assert not staged.exists()
    assert set(media_files()) <= before
    assert not ImageSet.objects.filter(name="published").exists()


@pytest.mark.django_db(transaction=True)
def test_import_killed_after_commit_keeps_its_images_through_the_sweep(tmp_path, database_url):
    folder = folder_of_tiles(tmp_path / "tiles", 20)
    staged = _run_killed_at(
        "from ratingstudy.catalog.staging import Staging; Staging.close = kill",
        folder=folder,
        name="committed",
        database_url=database_url,
        tmp_path=tmp_path,
    )
    image_set = ImageSet.objects.get(name="committed")

    report = staging_sweep()

    assert staged.name in report.removed and report.published_files_deleted == 0
    assert not staged.exists()
    assert image_set.images.count() == 20
    for image in image_set.images.all():
        assert default_storage.exists(image.file.name), image.file.name
        assert "staging" not in image.file.name


@pytest.mark.django_db(transaction=True)
def test_sweep_leaves_a_running_import_alone(tmp_path, database_url):
    folder = folder_of_tiles(tmp_path / "tiles", 300)
    process = manage(
        ["import_folder", str(folder), "--label", "benign", "--name", "running"],
        database_url=database_url,
        tmp_path=tmp_path,
    )
    staged = wait_for_staged_files(process)

    report = staging_sweep()  # what a second import does when it starts

    assert process.poll() is None, "the import finished before the sweep; nothing was tested"
    assert staged.name in report.kept and staged.name not in report.removed
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    image_set = ImageSet.objects.get(name="running")
    assert image_set.images.count() == 300
    assert all(default_storage.exists(image.file.name) for image in image_set.images.all())
    assert not staged.exists()  # removed once the import committed


@pytest.mark.django_db
def test_failure_after_publishing_removes_the_published_files(tmp_path, monkeypatch):
    folder = folder_of_tiles(tmp_path / "tiles", 3)
    entries = [ImageEntry(path=p, source_path=p.name) for p in sorted(folder.iterdir())]
    before = set(media_files())

    def refuse(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Image.objects, "bulk_create", refuse)
    with pytest.raises(RuntimeError, match="database went away"):
        image_set_import(name="late failure", kind="real", source="folder", entries=entries)
    assert set(media_files()) == before
    assert not ImageSet.objects.filter(name="late failure").exists()


def _foreign_staging_folder(import_id: str, *, created_at: datetime) -> None:
    """A staging folder written by an import on another machine sharing the storage."""
    owner = {
        "host": "another-machine",
        "boot_id": "",
        "pid": 1,
        "process_start": "1",
        "created_at": created_at.isoformat(),
    }
    default_storage.save(f"staging/{import_id}/owner.json", ContentFile(json.dumps(owner)))
    default_storage.save(f"staging/{import_id}/images/x.png", ContentFile(b"staged"))


@pytest.mark.django_db
def test_folders_of_other_machines_are_swept_only_when_old():
    now = datetime.now(UTC)
    _foreign_staging_folder("recent0", created_at=now - timedelta(minutes=30))
    _foreign_staging_folder("old0", created_at=now - timedelta(hours=25))

    report = staging_sweep(max_age=timedelta(hours=24))

    assert "old0" in report.removed and not default_storage.exists("staging/old0/owner.json")
    assert "recent0" in report.kept and default_storage.exists("staging/recent0/images/x.png")
    call_command("sweep_staging", "--max-age-hours", "0.25")
    assert not default_storage.exists("staging/recent0/owner.json")
