from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "ratingstudy.catalog"
    verbose_name = "Image catalogue"
