from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "ratingstudy.core"
    verbose_name = "Lab"

    def ready(self) -> None:
        from ratingstudy.core.roles import role_groups_ensure

        post_migrate.connect(role_groups_ensure, dispatch_uid="ratingstudy.core.roles")
