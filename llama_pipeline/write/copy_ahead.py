"""COPY text rendered ahead of its write, on one background thread, while the tables before it are written.

The warehouse step hands its tables to the IO manager one after another (chains, projects, pools,
pool_snapshots), and each write is Python rendering COPY text (bound to one core by the GIL) followed
by PostgreSQL merging it (the Python side waits on the socket). Rendering the next table's text while
the previous table's merge runs puts the machine's second core to work: pool_snapshots' text is ready
when pools' upsert (the longest statement of a day) commits. One thread renders the tables in the order
they are asked for, which is the order they are written, so the table written next is never behind one
written later.

The rendered text is kept in a spooled temporary file (in memory up to ``MAX_IN_MEMORY`` bytes, then on
disk), so a range's text is not held in memory whole. A value COPY cannot take fails the rendering; the
error is raised from the first read of the text, which the driver reports as it did when rendering
happened during the COPY (``QueryCanceled: error in .read() call``), and the write rolls back.
"""

from __future__ import annotations

import concurrent.futures
import io
import tempfile
from collections.abc import Sequence
from typing import BinaryIO

import pandas as pd
import sqlalchemy as sa

from llama_pipeline.write.pg_copy import copy_chunks

MAX_IN_MEMORY = 8 * 2**20  # bytes of COPY text kept in memory before a file goes to disk


def spool_file() -> BinaryIO:
    return tempfile.SpooledTemporaryFile(max_size=MAX_IN_MEMORY, mode="w+b")  # noqa: SIM115 - closed by its owner


def render_into(file: BinaryIO, frame: pd.DataFrame, columns: Sequence[sa.Column]) -> BinaryIO:
    """Append ``frame``'s rows to ``file`` as COPY text, a piece at a time (never the text whole)."""
    for chunk in copy_chunks(frame, columns):
        file.write(chunk)
    return file


class CopyAhead:
    """The step's renderer: one background thread, tasks run in the order they are submitted.

    Use it as a context manager around the asset's body (including its yields); leaving it cancels
    what has not started and waits for what has."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy-ahead")

    def __enter__(self) -> CopyAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def render(self, frame: pd.DataFrame, columns: Sequence[sa.Column],
               into: BinaryIO | None = None) -> concurrent.futures.Future[BinaryIO]:
        """Render ``frame`` (appended to ``into``, or to a new spooled file) in the background."""
        return self._pool.submit(render_into, spool_file() if into is None else into, frame, list(columns))


class RenderedCopy(io.RawIOBase):
    """A readable file over COPY text being rendered: the first read waits for the rendering (and raises
    its error, if it failed), then reads the text from the start."""

    def __init__(self, rendered: concurrent.futures.Future[BinaryIO]) -> None:
        super().__init__()
        self._rendered = rendered
        self._file: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - a writable buffer (memoryview or bytearray)
        if self._file is None:
            self._file = self._rendered.result()
            self._file.flush()
            self._file.seek(0)
        return self._file.readinto(buffer)

    def close(self) -> None:
        # Whenever the rendering ends (now, or after the write failed before reading it), its file is closed.
        self._rendered.add_done_callback(_close_rendered)
        super().close()


def _close_rendered(rendered: concurrent.futures.Future[BinaryIO]) -> None:
    if not rendered.cancelled() and rendered.exception() is None:
        rendered.result().close()
