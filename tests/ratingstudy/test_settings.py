"""Settings are parsed strictly from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from ratingstudy.lib.env import Env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("true", True), ("YES", True), ("off", False), ("0", False)]
)
def test_bool_accepts_common_spellings(raw, expected):
    assert Env({"DEBUG": raw}).bool("DEBUG", default=not expected) is expected


def test_bool_rejects_garbage_naming_the_variable():
    with pytest.raises(ImproperlyConfigured, match=r"DEBUG='maybe' is not a boolean"):
        Env({"DEBUG": "maybe"}).bool("DEBUG", default=False)


def test_int_and_minimum():
    assert Env({"N": "5"}).int("N", 1) == 5
    assert Env({}).int("N", 7) == 7
    with pytest.raises(ImproperlyConfigured, match="N='five' is not an integer"):
        Env({"N": "five"}).int("N", 1)
    with pytest.raises(ImproperlyConfigured, match="N=0 must be at least 1"):
        Env({"N": "0"}).int("N", 1, minimum=1)


def test_list_rejects_empty_items():
    assert Env({"HOSTS": "a.org, b.org"}).list("HOSTS", []) == ["a.org", "b.org"]
    with pytest.raises(ImproperlyConfigured, match="HOSTS"):
        Env({"HOSTS": "a.org,,b.org"}).list("HOSTS", [])


def test_database_urls():
    assert (
        Env({"DATABASE_URL": "postgres://u@h:5432/db"}).database("DATABASE_URL", "")["NAME"] == "db"
    )
    assert Env({}).database("DATABASE_URL", "sqlite:////tmp/x.db")["ENGINE"].endswith("sqlite3")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL='mysql://"):
        Env({"DATABASE_URL": "mysql://u@h/db"}).database("DATABASE_URL", "")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL='nonsense'"):
        Env({"DATABASE_URL": "nonsense"}).database("DATABASE_URL", "")


def test_redis_url_and_choice():
    assert Env({}).redis_url("REDIS_URL") is None
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL='http://x'"):
        Env({"REDIS_URL": "http://x"}).redis_url("REDIS_URL")
    with pytest.raises(ImproperlyConfigured, match="STORAGE_BACKEND='ftp' must be one of"):
        Env({"STORAGE_BACKEND": "ftp"}).choice(
            "STORAGE_BACKEND", "filesystem", ("filesystem", "s3")
        )


def _manage(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_requires_secret_key(tmp_path):
    result = _manage(
        ["check"], {"DJANGO_ENV": "production", "ALLOWED_HOSTS": "lab.example.org"}, tmp_path
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_bad_value_stops_startup_naming_variable(tmp_path):
    result = _manage(["check"], {"DEBUG": "sometimes"}, tmp_path)
    assert result.returncode != 0
    assert "DEBUG='sometimes' is not a boolean" in result.stderr


def test_production_settings_pass_deploy_check_without_warnings(tmp_path):
    env = {
        "DJANGO_ENV": "production",
        "SECRET_KEY": "k" * 10 + "3vQ!x9#Lp0sZrT7@wYb2&nM5^eJ8*uC1(dF4)gH6_iK+oA=lR",
        "ALLOWED_HOSTS": "lab.example.org",
    }
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_development_secret_key_is_generated_once_under_var(tmp_path):
    first = _manage(
        [
            "shell",
            "--no-imports",
            "-c",
            "from django.conf import settings; print(settings.SECRET_KEY)",
        ],
        {},
        tmp_path,
    )
    second = _manage(
        [
            "shell",
            "--no-imports",
            "-c",
            "from django.conf import settings; print(settings.SECRET_KEY)",
        ],
        {},
        tmp_path,
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert (tmp_path / "secret_key").read_text().strip() == first.stdout.strip()
    assert len(first.stdout.strip()) >= 50
