from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache():
    """Results are cached by data version; start every test with an empty cache."""
    cache.clear()
    yield
    cache.clear()
