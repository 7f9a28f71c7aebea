from django.apps import AppConfig


class ResultsConfig(AppConfig):
    name = "ratingstudy.results"
