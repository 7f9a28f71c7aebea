"""An S3-compatible server for the scale-out tests: moto in server mode, on 127.0.0.1.

Workers reach it through the environment that ``ratingstudy/settings.py`` reads
(``STORAGE_BACKEND=s3``, ``S3_BUCKET``, ``S3_ENDPOINT_URL``, ``S3_REGION`` and the AWS
credentials); this process (the web side) stores files in the same bucket through
django-storages with the same options.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import pytest
from django.test import override_settings

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str
    client: object  # a boto3 S3 client, to look into the bucket

    @property
    def worker_env(self) -> dict[str, str]:
        return {
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": self.bucket,
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_REGION": REGION,
            **CREDENTIALS,
        }

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture(scope="module")
def s3_server():
    import boto3
    from moto.server import ThreadedMotoServer

    # the server logs every request at INFO: thousands of lines in a failing test's output
    access_log = logging.getLogger("werkzeug")
    level = access_log.level
    access_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    bucket = f"lab-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    yield S3Server(endpoint_url=endpoint, bucket=bucket, client=client)
    server.stop()
    access_log.setLevel(level)


@pytest.fixture(scope="module")
def s3_storage(s3_server):
    """This process's default storage is the bucket (the options settings.py sets for s3)."""
    from django.conf import settings

    storages = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": s3_server.bucket,
                "endpoint_url": s3_server.endpoint_url,
                "region_name": REGION,
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
                "access_key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "secret_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            },
        },
    }
    with override_settings(STORAGES=storages):
        yield s3_server


@pytest.fixture(scope="module")
def machines(lab_workers, s3_storage):
    """A gpu machine and a cpu machine on the bucket; a test that kills the gpu worker
    puts its replacement here."""
    return {
        "gpu": lab_workers.start("gpu-a", queues="gpu", env=s3_storage.worker_env),
        "cpu": lab_workers.start("cpu-a", queues="cpu", env=s3_storage.worker_env),
    }


@pytest.fixture
def alice(client):
    """A logged-in job operator."""
    from tests.ratingstudy.jobs.helpers import OPERATOR_PERMISSIONS, staff_with

    client.force_login(staff_with("alice", *OPERATOR_PERMISSIONS))
    return client


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """A test database of its own on PostgreSQL (``make test`` runs these tests in a second pytest
    process, which must not wait for, or drop, the first run's database); SQLite's is per process."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if not database["ENGINE"].endswith("sqlite3"):
        database.setdefault("TEST", {})["NAME"] = f"test_{database['NAME']}_scaleout"
