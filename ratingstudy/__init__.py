"""The Django project: image catalogue, rating studies, jobs and results.

Never imports torch (directly or through ganlab's torch modules): anything that
needs torch runs in a Celery worker.
"""
