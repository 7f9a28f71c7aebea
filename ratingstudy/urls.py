from django.contrib import admin
from django.urls import include, path

from ratingstudy.core import views as core_views

admin.site.site_header = "GAN rating lab"
admin.site.site_title = "GAN rating lab"

urlpatterns = [
    path("", core_views.home, name="home"),
    path("health", core_views.health, name="health"),
    path("admin/", admin.site.urls),
    path("r/", include("ratingstudy.studies.urls")),
    path("results/", include("ratingstudy.results.urls")),
    path("jobs/", include("ratingstudy.jobs.urls")),
]
