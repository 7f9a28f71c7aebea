"""Celery adapter between ratingstudy (Django) and ganlab (PyTorch)."""
