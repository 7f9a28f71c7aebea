"""Settings, all read from the environment (see README "Environment variables").

``DJANGO_ENV=production`` turns on the deployment checks: SECRET_KEY must be set,
DEBUG is off (``DEBUG=1`` stops start-up) and cookies/HSTS/SSL settings are strict, so that
``manage.py check --deploy`` passes with no warnings. In development the secret
key is generated once and kept in ``$VAR_DIR/secret_key``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import csp.constants as csp
from django.core.exceptions import ImproperlyConfigured

from ratingstudy.lib.env import Env

env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env.path("VAR_DIR", BASE_DIR / "var")
ENVIRONMENT = env.choice("DJANGO_ENV", "development", ("development", "production"))
PRODUCTION = ENVIRONMENT == "production"


def _development_secret_key() -> str:
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", required=PRODUCTION) or _development_secret_key()
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured(
        "DEBUG is on with DJANGO_ENV=production: Django's debug pages would show source code, "
        "settings and request data to anyone who triggers an error; unset DEBUG (or set DEBUG=0)"
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "csp",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ratingstudy.core",
    "ratingstudy.catalog",
    "ratingstudy.studies",
    "ratingstudy.results",
    "ratingstudy.jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Debug pages only for 127.0.0.1/::1 (everything below runs inside it).
    "ratingstudy.lib.debug_pages.LocalDebugPagesMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ratingstudy.urls"
WSGI_APPLICATION = "ratingstudy.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite under var/ by default, PostgreSQL through DATABASE_URL.
DATABASES = {"default": env.database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web process read while a worker writes progress.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory, so that Celery worker subprocesses see the test database; one per test
    # run (process), so that two runs on one machine never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
WHITENOISE_USE_FINDERS = DEBUG
STATIC_ROOT = env.path("STATIC_ROOT", VAR_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it to exist
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", VAR_DIR / "media")
# Behind nginx (README, "Serving images from nginx"): rater images are sent as an X-Accel-Redirect to
# this internal location + the file's storage name, so that nginx, not Python, sends their bytes.
RATER_IMAGE_ACCEL_PREFIX = env.str("RATER_IMAGE_ACCEL_PREFIX", "")
if RATER_IMAGE_ACCEL_PREFIX and not (RATER_IMAGE_ACCEL_PREFIX.startswith("/") and RATER_IMAGE_ACCEL_PREFIX.endswith("/")):
    raise ImproperlyConfigured(
        f"RATER_IMAGE_ACCEL_PREFIX={RATER_IMAGE_ACCEL_PREFIX!r} must start and end with '/' (e.g. /_renders/)"
    )

# Files go through Django's storage API: local disk by default, S3-compatible
# object storage (django-storages) when machines do not share a disk.
STORAGE_BACKEND = env.choice("STORAGE_BACKEND", "filesystem", ("filesystem", "s3"))
if STORAGE_BACKEND == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("S3_BUCKET", required=True),
            "endpoint_url": env.str("S3_ENDPOINT_URL"),
            "region_name": env.str("S3_REGION"),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Images larger than this (width x height) are refused before decoding.
IMAGE_MAX_PIXELS = env.int("IMAGE_MAX_PIXELS", 50_000_000, minimum=1)

# Celery (worker/celery.py reads every CELERY_* setting).
REDIS_URL = env.redis_url("REDIS_URL")
# Unset REDIS_URL: no broker at all. worker/celery.py then refuses to connect, naming
# REDIS_URL, instead of Celery's silent default (amqp://localhost).
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_ROUTES = {
    "worker.tasks.run_gpu_job": {"queue": "gpu"},
    "worker.tasks.run_cpu_job": {"queue": "cpu"},
}
# A task not acknowledged in this time is redelivered (training tasks are long:
# a dead worker is found by its heartbeat instead, see ratingstudy.jobs).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 6 * 3600, minimum=60)
}
# Jobs: where a worker keeps its run folders (a local cache: checkpoints also go to
# storage after every epoch, so any machine can resume a job), how often they beat, when
# a silent running job counts as lost, and how many times a lost job is resumed.
JOBS_DIR = env.path("JOBS_DIR", VAR_DIR / "jobs")
JOB_HEARTBEAT_SECONDS = env.int("JOB_HEARTBEAT_SECONDS", 10, minimum=1)
JOB_STALE_SECONDS = env.int("JOB_STALE_SECONDS", 120, minimum=2)
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", 3, minimum=1)
# torch CPU threads per worker pool process; 0 = the worker's cores // its concurrency,
# so that CPU jobs never oversubscribe the machine (see worker/threads.py).
WORKER_TORCH_THREADS = env.int("WORKER_TORCH_THREADS", 0, minimum=0)
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A launch while Redis is down fails within seconds (and marks the job failed) instead
# of blocking the admin request.
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}

LOGIN_URL = "admin:login"

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Content-Security-Policy on every response (django-csp): scripts only from this origin, or
# inline with the per-request nonce; nothing from elsewhere, no plugins, no framing. Styles
# allow inline: the admin and plotly set style attributes, and OpenSeadragon adds a <style>;
# a style cannot run code, and images (data: for plotly exports) stay same-origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF, csp.UNSAFE_INLINE],
        "img-src": [csp.SELF, "data:", "blob:"],
        "connect-src": [csp.SELF],
        "font-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    },
}

LOG_LEVEL = env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
# Every handler redacts invitation tokens (``/r/<token>/``); Django's own loggers are routed
# through it too, instead of Django's default handlers, which would print them unredacted.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_tokens": {"()": "ratingstudy.lib.redact.RedactInvitationTokens"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_tokens"]}},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
