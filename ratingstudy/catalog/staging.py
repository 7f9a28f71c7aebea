"""Crash-safe file writes for imports: a staging area in the default storage, and its sweep.

A database transaction is all-or-nothing; files are not. An import therefore
writes every file it makes under its own staging folder and publishes them only
once every file is validated, so a killed import (SIGKILL, power cut) leaves
nothing that a later sweep cannot identify and remove::

    staging/<import id>/owner.json     who runs the import: host, boot id, pid, process start
    staging/<import id>/<final name>   a staged file (``images/set-3/<import id>/<sha>.png``)
    staging/<import id>/publish.json   the final names, written before the first file moves

Life of an import (:func:`import_staging`):

1. sweep what dead imports left behind, then write ``owner.json``;
2. decode, validate and :meth:`Staging.stage` every file (nothing outside ``staging/``);
3. inside the import's transaction, after the last file is validated and before
   the rows are inserted, :meth:`Staging.publish` writes ``publish.json`` and moves
   each file to its final name (a rename on local disk). Final names contain the
   import id, so they belong to this import alone;
4. after the transaction commits (``transaction.on_commit``) the staging folder is
   removed; if the import fails instead, its staged and published files are removed
   at once.

Files are moved into place just *before* the commit, not after it: that way a
committed row never names a file that is not there yet (readers could otherwise
see rows without files until the moves finish, or for good if the process died
in between), and ``publish.json`` makes a crash between the moves and the commit
recoverable: the sweep deletes every published file that no committed row
references. A crash after the commit loses nothing; the sweep only removes the
folder.

Two imports may run at once (web, workers, ``manage.py`` commands): a staging
folder is swept only when its owner is known to be gone: the same machine (host
name and boot id) and its pid no longer running, or running but a different
process (the process start time in ``/proc`` differs: the pid was reused). A
folder whose owner cannot be checked (another machine sharing the storage, or
no readable ``owner.json``) is swept only when it is older than ``max_age``
(24 h by default): an age alone cannot tell a slow import from a dead one, so it
is the fallback, not the rule. A process never sweeps its own folders (an import
nested in a caller's transaction that is later rolled back leaves its folder until
the process ends; then the next sweep removes its files).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from ratingstudy.catalog.models import Image

logger = logging.getLogger(__name__)

STAGING_DIR = "staging"
#: Folders whose owner cannot be checked are swept after this long.
DEFAULT_MAX_AGE = timedelta(hours=24)
_OWNER = "owner.json"
_PUBLISH = "publish.json"


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``); ``None`` if it is
    not running (or a zombie), ``""`` where ``/proc`` does not exist (then only the pid is checked)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by another user
        return ""
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (command name)"
    state, start = fields[0], fields[19]
    return None if state in ("Z", "X") else start


def _owner_record() -> dict:
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "boot_id": _boot_id(),
        "pid": pid,
        "process_start": _process_start(pid),
        "created_at": datetime.now(UTC).isoformat(),
    }


def _owner_is_running(owner: dict) -> bool | None:
    """Whether the import that wrote ``owner`` still runs; ``None`` when this machine cannot tell."""
    if owner.get("host") != socket.gethostname():
        return None
    if owner.get("boot_id") != _boot_id():
        return False  # same machine, rebooted since
    start = _process_start(int(owner["pid"]))
    return start is not None and (start == "" or start == owner.get("process_start"))


def _files_under(prefix: str) -> list[str]:
    """Every file below ``prefix`` in the default storage (an empty list if there is none)."""
    try:
        directories, files = default_storage.listdir(prefix)
    except FileNotFoundError:
        return []
    names = [f"{prefix}/{name}" for name in files]
    for directory in directories:
        names += _files_under(f"{prefix}/{directory}")
    return names


def _tree_delete(prefix: str) -> None:
    """Delete ``prefix`` and everything below it (folders too, where the storage has them)."""
    with contextlib.suppress(FileNotFoundError):
        directories, files = default_storage.listdir(prefix)
        for name in files:
            default_storage.delete(f"{prefix}/{name}")
        for directory in directories:
            _tree_delete(f"{prefix}/{directory}")
        default_storage.delete(prefix)  # FileSystemStorage removes the empty folder


def _json_read(name: str) -> dict | list | None:
    try:
        with default_storage.open(name, "rb") as fh:
            return json.loads(fh.read())
    except (OSError, ValueError):
        return None  # missing, or cut short by the crash


def _move(source: str, target: str) -> None:
    """Move a stored file: a rename on local disk, else a copy and a delete (object storage)."""
    try:
        source_path, target_path = default_storage.path(source), default_storage.path(target)
    except NotImplementedError:
        source_path = target_path = None
    if source_path and target_path:
        os.makedirs(os.path.dirname(target_path), exist_ok=True)
        try:
            os.replace(source_path, target_path)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # another file system: copy below
                raise
    with default_storage.open(source, "rb") as fh:
        saved = default_storage.save(target, fh)
    if saved != target:
        default_storage.delete(saved)
        raise RuntimeError(
            f"cannot publish {source}: {target} already exists in the storage; final names "
            "must contain the import id"
        )
    default_storage.delete(source)


def _published_remove(finals: Iterable[str]) -> int:
    """Delete the published files that no row references; how many were deleted."""
    finals = list(finals)
    referenced: set[str] = set()
    for start in range(0, len(finals), 500):
        chunk = finals[start : start + 500]
        referenced.update(Image.objects.filter(file__in=chunk).values_list("file", flat=True))
    orphans = [name for name in finals if name not in referenced]
    for name in orphans:
        default_storage.delete(name)
    return len(orphans)


@dataclass
class Staging:
    """One import's staging folder; see the module docstring."""

    import_id: str
    staged: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"{STAGING_DIR}/{self.import_id}"

    @classmethod
    def begin(cls) -> Staging:
        """A new staging folder owned by this process."""
        staging = cls(import_id=uuid.uuid4().hex)
        owner = json.dumps(_owner_record()).encode()
        default_storage.save(f"{staging.prefix}/{_OWNER}", ContentFile(owner))
        return staging

    def stage(self, final_name: str, content: bytes) -> str:
        """Write ``content`` to the staging folder; the staged name (publish moves it to
        ``final_name``, or to a suffixed variant if this import staged that name twice).

        ``final_name`` must contain :attr:`import_id`, so that no other import writes there.
        """
        if self.import_id not in final_name:
            raise ValueError(f"final name {final_name!r} must contain the import id")
        name = default_storage.save(f"{self.prefix}/{final_name}", ContentFile(content))
        self.staged.append(name)
        return name

    def final_name(self, staged_name: str) -> str:
        return staged_name.removeprefix(f"{self.prefix}/")

    def publish(self) -> dict[str, str]:
        """Move every staged file to its final name; staged name -> final name.

        ``publish.json`` (the final names) is written first, so that a crash during or
        after the moves leaves the sweep a list of what to check.
        """
        finals = {name: self.final_name(name) for name in self.staged}
        journal = json.dumps(sorted(finals.values())).encode()
        default_storage.save(f"{self.prefix}/{_PUBLISH}", ContentFile(journal))
        for staged, final in finals.items():
            _move(staged, final)
            self.published.append(final)
        return finals

    def close(self) -> None:
        """The import committed: only the staging folder is left to remove."""
        _tree_delete(self.prefix)

    def discard(self) -> None:
        """The import failed: remove its staged files, and the published ones no row references."""
        _published_remove(self.published)
        _tree_delete(self.prefix)


@contextlib.contextmanager
def import_staging(*, max_age: timedelta = DEFAULT_MAX_AGE) -> Iterator[Staging]:
    """Sweep dead imports' leftovers, then stage this import's files.

    Open the import's transaction *inside* this block (``with import_staging() as
    staging, transaction.atomic():``), so the transaction has ended when the block
    does: on an error every file of this import is removed; on success the staging
    folder goes once the outermost transaction commits.
    """
    staging_sweep(max_age=max_age)
    staging = Staging.begin()
    try:
        yield staging
    except BaseException:
        try:
            staging.discard()
        except Exception:  # keep the import's own error; a later sweep removes the rest
            logger.exception("could not remove the files of failed import %s", staging.import_id)
        raise
    transaction.on_commit(staging.close, robust=True)  # a leftover folder is swept later


@dataclass(frozen=True)
class SweepReport:
    """What :func:`staging_sweep` did: import ids removed and kept, orphan files deleted, and
    the folders it could not remove (import id -> reason)."""

    removed: list[str]
    kept: list[str]
    published_files_deleted: int
    failed: dict[str, str]


def _folder_age(prefix: str, owner: dict | None, now: datetime) -> timedelta:
    if owner and owner.get("created_at"):
        with contextlib.suppress(ValueError, TypeError):
            return now - datetime.fromisoformat(owner["created_at"])
    times = []
    # The folder itself counts where the storage has folders: an import may have created it
    # and not yet its owner.json.
    for name in [prefix, *_files_under(prefix)]:
        with contextlib.suppress(Exception):  # no such object (object storage has no folders)
            times.append(default_storage.get_modified_time(name))
    return now - max(times) if times else timedelta.max


def staging_sweep(*, max_age: timedelta = DEFAULT_MAX_AGE) -> SweepReport:
    """Remove the staging folders of imports that are no longer running.

    For each one, the published files (``publish.json``) that no committed row
    references are deleted, then the folder. Folders of running imports are kept,
    and so are folders whose owner cannot be checked until they are ``max_age`` old.
    """
    try:
        import_ids, _ = default_storage.listdir(STAGING_DIR)
    except FileNotFoundError:
        import_ids = []
    now = datetime.now(UTC)
    removed, kept, deleted, failed = [], [], 0, {}
    for import_id in sorted(import_ids):
        prefix = f"{STAGING_DIR}/{import_id}"
        try:
            owner = _json_read(f"{prefix}/{_OWNER}")
            owner = owner if isinstance(owner, dict) and "pid" in owner else None
            running = _owner_is_running(owner) if owner else None
            if running is None:
                running = _folder_age(prefix, owner, now) < max_age
            if running:
                kept.append(import_id)
                continue
            finals = _json_read(f"{prefix}/{_PUBLISH}")
            if isinstance(finals, list):
                deleted += _published_remove(str(name) for name in finals)
            _tree_delete(prefix)
        except Exception as exc:  # one bad folder must not stop the sweep, nor every import
            failed[import_id] = f"{type(exc).__name__}: {exc}"
            logger.warning("could not sweep staging folder %s: %s", prefix, exc)
            continue
        removed.append(import_id)
        logger.info("swept staging folder of dead import %s", import_id)
    return SweepReport(removed=removed, kept=kept, published_files_deleted=deleted, failed=failed)
