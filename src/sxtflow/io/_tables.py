"""Tab-separated tables (units in column names) and JSON, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core import InputError
from ._atomic import atomic_path

if TYPE_CHECKING:  # pandas is imported where a table is read (0.3 CPU-s a process)
    import pandas as pd


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_table(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write a tidy table atomically as tab-separated text (units are in column names)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return path


def read_text_table(
    path: str | os.PathLike,
    columns,
    *,
    required,
    what: str,
    empty: str,
    comment: str | None = None,
) -> pd.DataFrame:
    """Read a hand-written tab-separated table (sample sheet, label table) as strings.

    Header names and values are stripped, empty cells are ``""``; missing optional
    ``columns`` are added empty, and the result has exactly ``columns`` in that order.

    Raises
    ------
    InputError
        The file is missing or unparsable (``what`` names the table), lacks a ``required``
        column, has a column not in ``columns``, or has no rows (the ``empty`` message).
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(path, f"{what} does not exist")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=comment)
    except Exception as exc:
        raise InputError(path, f"cannot parse as a tab-separated table ({exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}")
    unknown = [c for c in table.columns if c not in columns]
    if unknown:
        raise InputError(
            path, f"unknown column(s) {', '.join(unknown)}; known: {', '.join(columns)}"
        )
    if table.empty:
        raise InputError(path, empty)
    for col in columns:
        if col not in table.columns:
            table[col] = ""
    return table[list(columns)].apply(lambda s: s.str.strip())


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a tab-separated table written by :func:`write_table`."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    try:
        return pd.read_csv(path, sep="\t")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except Exception as exc:
        raise InputError(path, f"cannot read table ({exc})") from exc


def _json_text(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write JSON atomically (numpy scalars and arrays are converted)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(_json_text(obj))
    return path


def read_json(path: str | os.PathLike):
    """Read a JSON file, raising :class:`InputError` when it is missing or malformed."""
    path = Path(path)
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise InputError(path, "file does not exist") from exc
    except json.JSONDecodeError as exc:
        raise InputError(path, f"malformed JSON ({exc})") from exc
