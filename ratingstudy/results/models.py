"""Models of the results app."""

from django.db import models  # noqa: F401
