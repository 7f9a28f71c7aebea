from django.urls import path

from ratingstudy.jobs import views

app_name = "jobs"
urlpatterns = [
    path("<int:job_id>/progress.json", views.job_progress, name="progress"),
    path("<int:job_id>/checkpoint", views.job_checkpoint, name="checkpoint"),
]
