"""Zarr stores: created with every chunk stored, sealed by a completion record written last
and verified against it before they are read (``sxtflow_integrity.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path

import numpy as np

from ..core import InputError
from ._tables import read_json, write_json


def create_zarr_array(directory: str | os.PathLike, name: str, shape, chunks, dtype="float32"):
    """Create a chunked array ``name`` in a new zarr store at ``directory`` (zarr 2 or 3).

    Every chunk is stored, also one equal to the fill value (zarr skips those by default), so
    a complete store holds exactly one file per chunk and a missing chunk is detectable.
    Used inside :func:`atomic_path` (``directory=True``) and closed by :func:`seal_store`, so a
    store appears only when complete.
    """
    import zarr

    root = zarr.open_group(str(directory), mode="w")
    if hasattr(root, "create_array"):  # zarr 3
        return root.create_array(
            name, shape=tuple(shape), chunks=tuple(chunks), dtype=dtype,
            config={"write_empty_chunks": True},
        )  # fmt: skip
    return root.create_dataset(
        name, shape=tuple(shape), chunks=tuple(chunks), dtype=dtype, write_empty_chunks=True
    )


INTEGRITY_RECORD = "sxtflow_integrity.json"
_INTEGRITY_FORMAT = "sxtflow-store-integrity/1"
_ZARR_META = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}


def _store_files(path: Path) -> dict[str, list]:
    """``{relative path: [bytes, CRC-32 hex]}`` of every file of a store but its record
    (and Snakemake's ``.snakemake_timestamp`` marker of a ``directory()`` output)."""
    files = {}
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path).as_posix()
        if f.is_file() and rel != INTEGRITY_RECORD and not rel.startswith(".snakemake"):
            crc = 0
            with open(f, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    crc = zlib.crc32(chunk, crc)
            files[rel] = [f.stat().st_size, f"{crc:08x}"]
    return files


def _chunk_files(files, name: str) -> int:
    return sum(1 for f in files if f.startswith(f"{name}/") and Path(f).name not in _ZARR_META)


def _files_checksum(files: dict) -> str:
    text = json.dumps(files, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def seal_store(directory: str | os.PathLike) -> dict:
    """Write the completion record of a finished zarr store (call it last, before the rename).

    The record (``sxtflow_integrity.json`` at the store's root) holds, per array, its shape,
    chunk shape, dtype and number of chunks, and, per file, its size and CRC-32, with a
    SHA-256 over that list. A store without it is partial (a killed write); a store whose
    files differ from it is damaged. :func:`verify_store` checks both.

    Returns
    -------
    dict
        The record.
    """
    import zarr

    directory = Path(directory)
    root = zarr.open_group(str(directory), mode="r")
    arrays = {}
    for name, arr in sorted(root.arrays()):
        arrays[name] = {
            "shape": list(arr.shape),
            "chunks": list(arr.chunks),
            "dtype": str(arr.dtype),
            "n_chunks": int(
                np.prod([-(-n // c) for n, c in zip(arr.shape, arr.chunks, strict=True)])
            ),
        }
    files = _store_files(directory)
    for name, spec in arrays.items():
        n = _chunk_files(files, name)
        if n != spec["n_chunks"]:  # every chunk is stored (create_zarr_array): a write is missing
            raise ValueError(f"{directory}: array {name!r} has {n} of {spec['n_chunks']} chunks")
    record = {
        "format": _INTEGRITY_FORMAT,
        "arrays": arrays,
        "files": files,
        "checksum": _files_checksum(files),
    }
    write_json(directory / INTEGRITY_RECORD, record)
    return record


def verify_store(path: str | os.PathLike) -> dict:
    """Check a zarr store against its completion record (:func:`seal_store`); return the record.

    Reads every file once (memory: 4 MiB at a time): shapes, the number of chunks, every file's
    size and CRC-32 and the record's checksum must agree.

    Raises
    ------
    InputError
        Naming the store and what is wrong: no record (a partial store: rerun the step that
        makes it), a missing, extra or changed chunk (a damaged store).
    """
    import zarr

    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "store does not exist" if not path.exists() else "not a directory")
    rec_path = path / INTEGRITY_RECORD
    if not rec_path.is_file():
        raise InputError(
            path,
            f"no completion record ({INTEGRITY_RECORD}, written last): a partial store, left "
            "by a killed or failed write (or written by another tool); rerun the step that makes it",
        )
    record = read_json(rec_path)
    if not isinstance(record, dict) or record.get("format") != _INTEGRITY_FORMAT:
        raise InputError(rec_path, f"not a {_INTEGRITY_FORMAT} completion record")
    want = record.get("files", {})
    if _files_checksum(want) != record.get("checksum"):
        raise InputError(rec_path, "the completion record's checksum does not match its file list")
    damaged = "the store is damaged: rerun the step that makes it"
    try:
        root = zarr.open_group(str(path), mode="r")
        for name, spec in record.get("arrays", {}).items():
            arr = root[name]
            got = {"shape": list(arr.shape), "chunks": list(arr.chunks), "dtype": str(arr.dtype)}
            if any(got[k] != spec[k] for k in got):
                raise InputError(
                    path, f"array {name!r} is {got}, its record says {spec}; {damaged}"
                )
            n = _chunk_files(want, name)
            if n != spec["n_chunks"]:
                raise InputError(
                    path, f"array {name!r} records {n} chunk files for {spec['n_chunks']} chunks"
                )
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"not a readable zarr store ({type(exc).__name__}: {exc})") from exc
    have = _store_files(path)
    missing = sorted(set(want) - set(have))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(path, f"chunk file {missing[0]}{more} is missing; {damaged}")
    extra = sorted(set(have) - set(want))
    if extra:
        raise InputError(path, f"file {extra[0]} is not in the completion record; {damaged}")
    changed = sorted(f for f in want if have[f] != want[f])
    if changed:
        f = changed[0]
        raise InputError(
            path,
            f"chunk file {f} has changed ({have[f][0]} bytes, CRC-32 {have[f][1]}; recorded "
            f"{want[f][0]} bytes, {want[f][1]}); {damaged}",
        )
    return record


def store_token(path: str | os.PathLike) -> tuple:
    """Identity of a sealed store: its record's inode, change time and checksum.

    A store replaced by another write (even with equal content) gets another token, so a
    step that read it can check, before it writes its output, that it read one store only.
    """
    rec = Path(path) / INTEGRITY_RECORD
    try:
        st = rec.stat()
        checksum = read_json(rec).get("checksum")
    except (OSError, InputError, AttributeError):
        return (None,)
    return (st.st_dev, st.st_ino, st.st_ctime_ns, checksum)
