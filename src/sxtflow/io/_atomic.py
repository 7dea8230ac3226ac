"""Atomic outputs: a temporary beside the target, renamed when complete.

An interrupted or failed write leaves the older output as it was and no partial file that
looks complete; a write that fails for want of space or permission raises
:class:`OutputError` naming the output. Temporaries of killed writers are removed by the next
write of the same output.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..core import InputError


class OutputError(InputError):
    """An output cannot be written (full disk, read-only directory, wrong kind of path)."""


#: errno values of a failed write, and what they mean to a user
_WRITE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (file-system or process file-size limit)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied (read-only directory?)",
    errno.EPERM: "operation not permitted (read-only directory?)",
}


def _write_failure(exc: BaseException) -> str | None:
    """What a failed write means (full disk, read-only …), or None if ``exc`` is not one.

    HDF5 and zarr wrap the OS error in their own exceptions (h5py: a ``RuntimeError`` saying
    ``errno = 28``), so the message and the exception's causes are read too.
    """
    seen = 0
    while exc is not None and seen < 5:
        code = exc.errno if isinstance(exc, OSError) else None
        if code is None and isinstance(exc, Exception):
            text = str(exc)
            match = re.search(r"errno = (\d+)", text)
            if match:
                code = int(match.group(1))
            else:
                code = next((c for c in _WRITE_ERRNOS if os.strerror(c) in text), None)
        if code in _WRITE_ERRNOS:
            return _WRITE_ERRNOS[code]
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _output_error(path: Path, reason: str) -> OutputError:
    return OutputError(
        path, f"cannot write this output: {reason}; it was left as it was, with no partial "
        "file (free space or fix the permissions, then rerun)",
    )  # fmt: skip


def _owner() -> str:
    """``pid@host`` of this process, as it appears in the names of its temporary outputs."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]
    return f"{os.getpid()}@{host}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries a killed writer of ``path`` left beside it; return them.

    :func:`atomic_path` names its temporaries ``.<name>.<pid>@<host>.<random>.tmp…``. One is
    stale when its process no longer runs on this host (or it predates owner names); a
    temporary of a live process, or of another host (a cluster node: its liveness cannot be
    checked from here), is left alone.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(
        rf"^\.{re.escape(path.name)}\.(?:(\d+)@([A-Za-z0-9-]*)\.)?[a-z0-9_]{{8}}(?:\.old)?\.tmp"
    )
    host = _owner().split("@", 1)[1]
    removed = []
    for cand in path.parent.iterdir():
        m = pattern.match(cand.name)
        if m is None:
            continue
        pid, owner_host = m.groups()
        if pid is not None and (owner_host != host or _alive(int(pid))):
            continue
        if cand.is_dir() and not cand.is_symlink():
            shutil.rmtree(cand, ignore_errors=True)
        else:
            cand.unlink(missing_ok=True)
        removed.append(cand)
    if removed:
        logging.getLogger("sxtflow").info(
            "removed %d stale temporary file(s) of %s left by a killed run", len(removed), path
        )
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    On any exception the temporary file (or directory) is removed and ``path`` is left
    as it was, so nothing already computed is overwritten with garbage. Temporaries that a
    killed run left for the same ``path`` are removed first (:func:`remove_stale_temporaries`).

    Raises
    ------
    OutputError
        ``path`` is an existing directory (file output) or file (``directory=True``), or the
        write fails for want of space or permission (the error names ``path`` and why).
    """
    path = Path(path)
    if not directory and path.is_dir():
        raise OutputError(path, "the output is an existing directory; give a file name")
    if directory and (path.is_file() or path.is_symlink() and not path.is_dir()):
        raise OutputError(path, "the output is an existing file; a directory is written here")
    prefix = f".{path.name}.{_owner()}."
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        if directory:
            tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent))
            shutil.rmtree(tmp)
        else:
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp" + path.suffix, dir=path.parent)
            os.close(fd)
            tmp = Path(name)
    except OSError as exc:
        reason = _write_failure(exc)
        if reason is None:
            raise
        raise _output_error(path, reason) from exc
    old = None
    try:
        yield tmp
        if tmp.is_file():  # mkstemp makes 0600 files; give outputs the usual umask mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        if directory and path.exists():
            # move the old store aside and drop it after the rename: a reader never finds
            # the path missing for longer than two renames
            old = Path(str(tmp)[: -len(".tmp")] + ".old.tmp")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        if old is not None and old.exists() and not path.exists():
            os.replace(old, path)
        reason = _write_failure(exc)
        if reason is None:
            raise
        raise _output_error(path, reason) from exc


@contextlib.contextmanager
def scratch_directory(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary directory beside the output ``path``, removed on exit.

    For intermediate data a stage spills to disk while it writes ``path`` (e.g. predict's
    uncertainty while the tomogram is in memory). It is named as :func:`atomic_path`'s
    temporaries of ``path`` (``.<name>.<pid>@<host>.<random>.tmp``), so when the run is
    killed the next write of ``path`` removes it (:func:`remove_stale_temporaries`); stale
    ones are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    with tempfile.TemporaryDirectory(
        prefix=f".{path.name}.{_owner()}.", suffix=".tmp", dir=path.parent
    ) as scratch:
        yield Path(scratch)
