"""Models of the studies app."""

from django.db import models  # noqa: F401
