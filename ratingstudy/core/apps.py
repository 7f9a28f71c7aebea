from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "ratingstudy.core"
    verbose_name = "Lab"
