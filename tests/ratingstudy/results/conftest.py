from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache():
    """Results are cached by data version; start every test with an empty cache."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _no_results_broker(settings):
    """No broker unless a test asks for one (``settings.REDIS_URL = redis_url``): the results page
    then recomputes a stale snapshot on view, and no refresh job goes to a Redis (CI's
    REDIS_URL) that no worker of this test reads."""
    settings.REDIS_URL = None
