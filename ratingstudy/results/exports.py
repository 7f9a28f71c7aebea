"""Streaming CSV and JSON writers: rows in, text chunks out, in constant memory.

Rows are consumed from an iterator (``QuerySet.iterator(chunk_size=...)`` upstream) and
written ``batch`` at a time into one reused buffer, which is yielded and emptied: memory
holds one batch, whatever the number of rows. CSV follows RFC 4180 (``csv.writer``
defaults): ``None`` is an empty field, booleans are ``True``/``False``, timestamps are
ISO 8601 with a space separator and their UTC offset (``str(datetime)``). JSON is one array of objects (``orient="records"``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from django.http import StreamingHttpResponse

#: Rows per yielded chunk (about 100-200 kB of CSV for tidy responses).
BATCH = 1000


def csv_chunks(*, header: Sequence[str], rows: Iterable[Sequence[Any]], batch: int = BATCH) -> Iterator[str]:
    """CSV text of ``header`` and ``rows``, ``batch`` rows per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    iterator = iter(rows)
    while chunk := list(islice(iterator, batch)):
        writer.writerows(chunk)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def json_chunks(*, header: Sequence[str], rows: Iterable[Sequence[Any]], batch: int = BATCH) -> Iterator[str]:
    """A JSON array of ``{column: value}`` objects, ``batch`` objects per chunk."""
    encoder = json.JSONEncoder(default=_json_default, allow_nan=False, separators=(",", ":"))
    names = list(header)
    iterator = iter(rows)
    first = True
    yield "["
    while chunk := list(islice(iterator, batch)):
        text = ",\n".join(encoder.encode(dict(zip(names, row, strict=True))) for row in chunk)
        yield ("\n" if first else ",\n") + text
        first = False
    yield "\n]\n"


def streaming_response(
    *, filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str
) -> StreamingHttpResponse:
    """A download of ``rows`` as ``fmt`` (``"csv"`` or ``"json"``), streamed."""
    if fmt == "csv":
        chunks, content_type = csv_chunks(header=header, rows=rows), "text/csv; charset=utf-8"
    else:
        chunks, content_type = json_chunks(header=header, rows=rows), "application/json"
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response
