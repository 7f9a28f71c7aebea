"""The results app's Celery task: recompute a study's results snapshot (``cpu`` queue).

Sent by name (:data:`ratingstudy.results.services.REFRESH_TASK`) from
:func:`~ratingstudy.results.services.schedule_results_refresh`; workers load this module
through ``worker.celery``'s ``include``. It takes a study id, re-reads the world and is
idempotent, so a redelivered or duplicated run only recomputes the same snapshot.
"""

from __future__ import annotations

from worker.celery import app


@app.task(name="ratingstudy.results.tasks.refresh_study_results")
def refresh_study_results(*, study_id: int) -> dict | None:
    """Release the study's debounce key, then recompute and store its snapshot."""
    from ratingstudy.results.services import refresh_schedule_clear, results_snapshot_refresh

    refresh_schedule_clear(study_id=study_id)
    snapshot = results_snapshot_refresh(study_id=study_id)
    if snapshot is None:
        return None
    return {"study_id": study_id, "responses": snapshot.responses, "seconds": round(snapshot.compute_seconds, 3)}
