"""WSGI entry point (gunicorn ratingstudy.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratingstudy.settings")
application = get_wsgi_application()
