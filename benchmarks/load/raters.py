"""Simulated raters (locust, headless) for the load, round-trip and fault scripts.

Started by ``load/stack.py`` as a subprocess, never imported (gevent patches the
standard library of whatever process imports locust)::

    python benchmarks/load/raters.py CONFIG.json RESULTS.json

CONFIG is a ``stack.ClientRun``. Modes:

* ``session``: each user takes one invitation and does the whole session as a rater
  in a browser does: open the link (and the page's CSS/JS once), fill the profile,
  then per trial fetch the page and the image, think, submit and land on the next
  trial (or the practice feedback, then the next trial), until the thank-you page.
  With ``one_request`` (the default) an answer is sent as the trial page's script sends
  it (``X-Rating-Fragment: 1``) and its reply is the next trial: one request; without,
  as a plain form post: the POST, then the redirect's GET.
* ``answer``: each user takes already started sessions one after another and, per
  trial, fetches the image (``fetch_images``), thinks and submits, for ``duration`` s.
* ``health``: each user thinks and fetches ``/health``, for ``duration`` s.

A step that fails with a connection error or 502/503/504 (the server being
restarted) is retried unchanged until ``step_timeout``. Retrying a POST is
idempotent: the trial token names the answer, and a second POST to an answered
trial is answered with the next trial without writing anything.

Every answer is recorded with its trial token and a client-side id that is sent as
``client_ms`` (the one free integer the answer form takes), so the database check
afterwards can tell which send was stored. RESULTS holds every HTTP request
(name, start, ms, status, error), every operation (``submit-and-next`` = from sending
the answer to holding the next trial, as the rater waits for it), the answers, the
raters who reached the thank-you page and the failures.
"""

from __future__ import annotations

import json
import random
import re
import resource
import sys
import time
from collections.abc import Iterator
from typing import Any

import gevent
from locust import FastHttpUser, task
from locust.env import Environment
from locust.exception import StopUser

ANSWER_FORM = re.compile(r'<form[^>]*id="answer-form"[^>]*>')
ACTION = re.compile(r'action="([^"]+)"')
TRIAL_IMAGE = re.compile(r'data-image-url="([^"]+)"')
CONTINUE = re.compile(r'<a[^>]*id="continue"[^>]*href="([^"]+)"')
STATIC = re.compile(r'(?:href|src)="(/static/[^"]+)"')
RETRYABLE = {0, 502, 503, 504}
FRAGMENT = {"X-Rating-Fragment": "1"}  # what the trial page's script sends (ratingstudy.studies.views)
MAX_FORM_MS = 24 * 3600 * 1000  # the answer form's limit for client_ms


class RaterFailed(Exception):
    """A rater could not go on: an unexpected page or status, or retries ran out."""


class Shared:
    """State shared by all users of this client process (gevent: one thread, no locks)."""

    config: dict[str, Any] = {}
    invitations: Iterator[tuple[int, str]] = iter(())
    started = 0  # users started
    active = 0  # users inside their task
    sessions_done = 0  # session mode: invitations taken and finished (completed or failed)
    deadline = float("inf")  # answer/health modes: no new operation after this (monotonic)
    http: list[list[Any]] = []
    ops: list[list[Any]] = []
    answers: list[dict[str, Any]] = []
    completed: list[str] = []
    failures: list[str] = []
    exhausted = False  # answer mode: a user ran out of sessions before the deadline


def page_kind(html: str) -> str:
    if 'id="answer-form"' in html:
        return "trial"
    if 'id="continue"' in html:
        return "feedback"
    if 'class="card done"' in html:
        return "complete"
    if 'name="years_experience"' in html:
        return "welcome"
    return "unknown"


def first(pattern: re.Pattern[str], html: str, what: str) -> str:
    match = pattern.search(html)
    if match is None:
        raise RaterFailed(f"no {what} on the page: {html[:300]!r}")
    return match.group(1) if pattern.groups else match.group(0)


class Rater(FastHttpUser):
    host = "http://127.0.0.1"  # replaced from the config
    network_timeout = 30.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        cfg = Shared.config
        Shared.started += 1
        self.rng = random.Random(cfg["seed"] * 100_003 + Shared.started)
        self.static_fetched = False

    # -- plumbing -----------------------------------------------------------------------------

    def think(self, scale: float = 1.0) -> None:
        cfg = Shared.config
        if cfg["think_max"] > 0:
            gevent.sleep(scale * self.rng.uniform(cfg["think_min"], cfg["think_max"]))

    def call(
        self, method: str, path: str, name: str, data: dict[str, str] | None = None, follow: bool = True,
        headers: dict[str, str] | None = None,
    ):
        """One HTTP step, retried unchanged while the server is unreachable; returns (response, attempts)."""
        give_up = time.monotonic() + Shared.config["step_timeout"]
        attempt = 0
        while True:
            attempt += 1
            response = self.client.request(method, path, name=name, data=data, allow_redirects=follow, headers=headers)
            status = response.status_code
            broken = getattr(response, "transfer_error", None)  # e.g. the body cut off by a kill
            if status and status < 400 and broken is None:
                return response, attempt
            if (status not in RETRYABLE and broken is None) or time.monotonic() > give_up:
                detail = broken or (response.error if status == 0 else (response.text or "")[:300])
                raise RaterFailed(f"{method} {name} -> {status} after {attempt} attempt(s): {detail!r}")
            gevent.sleep(min(0.05 * 2**attempt, 1.0))

    def op(self, name: str, started: float, perf_start: float, ok: bool = True) -> None:
        Shared.ops.append([name, started, 1000 * (time.perf_counter() - perf_start), ok])

    # -- what a rater does --------------------------------------------------------------------

    def fetch_static(self, html: str) -> None:
        """A browser loads the page's CSS and JS once and caches them."""
        if not self.static_fetched:
            for path in dict.fromkeys(STATIC.findall(html)):
                self.call("GET", path, "static")
            self.static_fetched = True

    def open_invitation(self, token: str) -> str:
        started, perf = time.time(), time.perf_counter()
        page = self.call("GET", f"/r/{token}/", "invitation")[0].text
        self.op("invitation", started, perf)
        self.fetch_static(page)
        if page_kind(page) != "welcome":
            return page
        self.think(0.5)
        data = {
            "role": self.rng.choice(["pathologist", "resident"]),
            "years_experience": str(self.rng.randint(0, 30)),
            "specialty": "breast pathology",
        }
        if 'name="consent"' in page:
            data["consent"] = "on"
        started, perf = time.time(), time.perf_counter()
        page = self.call("POST", f"/r/{token}/", "profile", data=data)[0].text
        self.op("profile", started, perf)
        return page

    def answer_trials(self, slot: int, token: str, page: str, *, until: float = float("inf")) -> bool:
        """Answer trials from ``page`` on; True when the thank-you page was reached."""
        number = 0
        while True:
            kind = page_kind(page)
            if kind == "complete":
                Shared.completed.append(token)
                return True
            if time.monotonic() > until:
                return False
            if kind == "feedback":
                self.think(0.25)
                started, perf = time.time(), time.perf_counter()
                page = self.call("GET", first(CONTINUE, page, "continue link"), "after feedback")[0].text
                self.op("after-feedback", started, perf)
                continue
            if kind != "trial":
                raise RaterFailed(f"expected a trial page, got: {page[:300]!r}")
            form = first(ANSWER_FORM, page, "answer form")
            action = first(ACTION, form, "form action")
            if Shared.config["fetch_images"]:
                image = first(TRIAL_IMAGE, page, "trial image URL")
                self.call("GET", image, "image")
            self.think()
            number += 1
            answer = {
                "rater": token,
                "trial": action.rstrip("/").split("/")[-2],
                "client_id": slot * 1000 + number,
                "judged_real": self.rng.random() < 0.5 if 'name="judged_real"' in page else None,
                "quality": self.rng.randint(1, 5) if 'name="quality"' in page else None,
                "confidence": self.rng.randint(1, 3) if 'name="confidence"' in page else None,
                "confirmed": False,
                "attempts": 0,
            }
            Shared.answers.append(answer)
            data = {"client_ms": str(answer["client_id"])}
            if answer["judged_real"] is not None:
                data["judged_real"] = "real" if answer["judged_real"] else "generated"
            for field in ("quality", "confidence"):
                if answer[field] is not None:
                    data[field] = str(answer[field])
            started, perf = time.time(), time.perf_counter()
            if Shared.config["one_request"]:
                response, answer["attempts"] = self.call("POST", action, "answer", data=data, follow=False, headers=FRAGMENT)
                elsewhere = response.headers.get("x-rating-location")
                if response.status_code == 200 and not elsewhere:
                    page = response.text  # the next trial's body
                elif response.status_code == 204 and elsewhere:
                    page = self.call("GET", elsewhere, "next page")[0].text  # feedback or thank-you page
                else:
                    raise RaterFailed(f"answer not accepted ({response.status_code}): {(response.text or '')[:300]!r}")
            else:
                response, answer["attempts"] = self.call("POST", action, "answer", data=data, follow=False)
                if response.status_code not in (301, 302, 303):
                    raise RaterFailed(f"answer not accepted ({response.status_code}): {(response.text or '')[:300]!r}")
                page = self.call("GET", response.headers["location"], "next page")[0].text
            answer["confirmed"] = True
            landed = page_kind(page)
            name = {"trial": "submit-and-next", "feedback": "submit-and-feedback", "complete": "submit-and-finish"}
            self.op(name.get(landed, "submit-and-other"), started, perf)

    # -- modes --------------------------------------------------------------------------------

    @task
    def rate(self) -> None:
        """Do this user's work, then hold its place until the run ends (a user that stops is
        replaced by locust, and the replacement would start over)."""
        if time.monotonic() < Shared.deadline:
            Shared.active += 1
            try:
                self.work(Shared.config["mode"])
            except RaterFailed as exc:
                Shared.failures.append(str(exc))
            except Exception as exc:  # a bug in this client: report it instead of letting locust retry
                Shared.failures.append(f"{type(exc).__name__}: {exc}")
            finally:
                Shared.active -= 1
        gevent.sleep(Shared.config["time_limit"] + 3600)  # ended by runner.quit()
        raise StopUser()

    def work(self, mode: str) -> None:
        if mode == "health":
            while time.monotonic() < Shared.deadline:
                self.think()
                started, perf = time.time(), time.perf_counter()
                self.call("GET", "/health", "health")
                self.op("health", started, perf)
        elif mode == "session":
            slot, token = next(Shared.invitations, (None, None))
            if token is not None:
                try:
                    self.answer_trials(slot, token, self.open_invitation(token))
                finally:
                    Shared.sessions_done += 1
        else:  # answer: sessions were started by the driver
            for slot, token in Shared.invitations:
                started, perf = time.time(), time.perf_counter()
                page = self.call("GET", f"/r/{token}/trial/", "trial page")[0].text
                self.op("trial page", started, perf)
                if not self.answer_trials(slot, token, page, until=Shared.deadline):
                    return
            Shared.exhausted = time.monotonic() < Shared.deadline


def record_http(request_type, name, response_time, response_length, exception=None, response=None, start_time=None, **_kw) -> None:  # noqa: E501
    status = getattr(response, "status_code", 0) or 0
    if exception is not None and response is not None and 0 < status < 400:
        response.transfer_error = repr(exception)[:200]  # a status line arrived, the rest did not
    Shared.http.append([name, start_time, response_time, status, None if exception is None else repr(exception)[:200]])


def main(config_path: str, results_path: str) -> int:
    with open(config_path) as fh:
        cfg = json.load(fh)
    if len(cfg["tokens"]) >= MAX_FORM_MS // 1000:
        raise SystemExit(f"at most {MAX_FORM_MS // 1000 - 1} invitations per run (client ids go in client_ms)")
    Shared.config = cfg
    Shared.invitations = iter(enumerate(cfg["tokens"]))
    Rater.host = cfg["host"]
    environment = Environment(user_classes=[Rater], host=cfg["host"])
    environment.events.request.add_listener(record_http)
    runner = environment.create_local_runner()
    t0 = time.time()
    begin = time.monotonic()
    if cfg["duration"]:
        Shared.deadline = begin + cfg["duration"]
    users = cfg["users"]
    runner.start(users, spawn_rate=cfg["spawn_rate"] or users)
    hard_stop = begin + cfg["time_limit"]

    def going() -> bool:
        if cfg["mode"] == "session":
            return Shared.sessions_done < len(cfg["tokens"])
        return time.monotonic() < Shared.deadline or Shared.active > 0

    while going() and time.monotonic() < hard_stop:
        gevent.sleep(0.1)
    if going():
        Shared.failures.append(
            f"time limit of {cfg['time_limit']:.0f} s reached with {Shared.active} raters still going"
        )
    runner.quit()
    with open(results_path, "w") as fh:
        json.dump(
            {
                "t0": t0,
                "t_end": time.time(),
                "users": users,
                "http": Shared.http,
                "ops": Shared.ops,
                "answers": Shared.answers,
                "completed": Shared.completed,
                "rater_failures": Shared.failures,
                "exhausted": Shared.exhausted,
                "client_cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
            },
            fh,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
