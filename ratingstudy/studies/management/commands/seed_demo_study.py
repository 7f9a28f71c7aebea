"""``manage.py seed_demo_study``: the demo study's invitation link, once the demo GAN made its images.

The demo study holds real demo tiles and the translations of the held-out tiles by the
demo CycleGAN that ``make run``'s worker (or ``manage.py demo_gan``) trains; see
:mod:`ratingstudy.core.services`. No placeholder images are made any more: until the
GAN's output exists this command says where the demo stands and exits with an error,
and a placeholder study left by an earlier version is removed once the real one opens.

Prints (and returns) the invitation URL of an unrevoked demo rater whose session is not
finished, creating one if needed. Only the hash of a token is stored, so running it
again re-issues that rater's link: the new link continues the same session, and the old
one stops working.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ratingstudy.core.selectors import DEMO_EXPERIMENT
from ratingstudy.core.services import demo_advance, demo_invitation
from ratingstudy.errors import ApplicationError


class Command(BaseCommand):
    help = "Print an invitation link to the demo study (made from the demo GAN's output)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="origin the link starts with"
        )
        parser.add_argument("--name", default=DEMO_EXPERIMENT, help="the demo experiment")

    def handle(self, *args, **options) -> str:
        try:
            demo_advance(name=options["name"])
            return demo_invitation(base_url=options["base_url"], name=options["name"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
