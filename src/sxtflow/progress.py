"""Progress lines for long steps, so a user watching a cluster job's log sees it is alive."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("sxtflow")


def progress(items: Iterable[T], total: int, what: str, *, every_pct: float = 10.0) -> Iterator[T]:
    """Yield ``items`` and log ``"<what>: 40% (4/10), 3.1 s"`` lines at ~``every_pct`` steps."""
    start = time.perf_counter()
    next_pct = 0.0
    done = 0
    for item in items:
        yield item
        done += 1
        pct = 100.0 * done / max(total, 1)
        if pct >= next_pct or done == total:
            log.info(
                "%s: %3.0f%% (%d/%d), %.1f s", what, pct, done, total, time.perf_counter() - start
            )
            next_pct = pct + every_pct


def log_to(path: str | None = None, level: int = logging.INFO) -> None:
    """Send sxtflow's log lines (and, for a file, stderr with any traceback) to ``path``.

    Used first thing by every workflow script so a rule's log shows progress and errors.
    With a ``path`` (a rule's log), bad input (:class:`sxtflow.core.InputError`, which names
    the file and the problem) ends the job with that one line, ``sxtflow: error: …``, and
    exit status 1, as on the command line; any other exception is a bug and keeps its
    traceback.
    """
    import sys

    if path:
        stream = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
        sys.stderr = stream
        sys.excepthook = _one_line_input_errors
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _one_line_input_errors(kind, exc, tb) -> None:
    """``sys.excepthook`` of rule scripts: one line for bad input, a traceback for bugs."""
    import sys

    from .core import InputError

    if issubclass(kind, InputError):
        print(f"sxtflow: error: {exc}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, exc, tb)
