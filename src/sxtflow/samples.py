"""The sample sheet: one row per tomogram, checked before any job runs.

Columns (see ``config/README.md``): ``sample``, ``condition``, ``kind``
(``simulate`` | ``projections`` | ``tomogram``), ``input``, ``cell_type``, ``voxel_nm``,
``annotation``, ``truth``. Every problem is reported with the sheet's path, the row number
(1 = first data row) and the column, all at once, so a user fixes the sheet in one go.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .core import InputError
from .io import read_text_table

__all__ = [
    "load_sample_sheet",
    "sheet_as_text",
    "set_value",
    "COLUMNS",
    "KINDS",
    "CELL_TYPES",
    "RESERVED_IDS",
]

COLUMNS = ["sample", "condition", "kind", "input", "cell_type", "voxel_nm", "annotation", "truth"]
KINDS = ("simulate", "projections", "tomogram")
CELL_TYPES = ("yeast", "lymphocyte")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: Names under ``results/`` that the workflow's aggregate steps write: a sample of that name
#: (``results/{sample}/``) would collide with them. Compared case-insensitively (macOS, Windows).
RESERVED_IDS = ("benchmarks", "compare", "evaluation.tsv", "model", "report.html")


def _escapes(path: str, base: Path) -> bool:
    """True when a relative ``path`` resolves outside ``base`` (e.g. ``../../etc``)."""
    if os.path.isabs(path):
        return False
    resolved = (base / path).resolve()
    return not resolved.is_relative_to(base.resolve())


def load_sample_sheet(path: str | os.PathLike, base_dir: str | os.PathLike = ".") -> pd.DataFrame:
    """Read and check the sample sheet.

    Parameters
    ----------
    path : path-like
        Tab-separated sample sheet.
    base_dir : path-like
        Directory relative paths in the sheet are resolved against (the working directory).
        Absolute paths may point anywhere (data on a shared file system); relative paths must
        stay inside ``base_dir``.

    Returns
    -------
    DataFrame
        Indexed by ``sample`` (sorted), all columns as strings ('' when empty), with the
        column ``voxel_nm`` as float (NaN = from the file header).

    Raises
    ------
    InputError
        Listing every problem as ``row N (sample 'x'): column: problem``.
    """
    path = Path(path)
    base = Path(base_dir)
    sheet = read_text_table(
        path,
        COLUMNS,
        required=("sample", "condition", "kind"),
        what="sample sheet",
        empty="no samples (the sheet has a header but no rows)",
        comment="#",
    )

    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(sheet.itertuples(index=False), start=1):
        where = f"row {i} (sample {row.sample!r})"

        def bad(column: str, problem: str, where=where) -> None:
            problems.append(f"{where}: {column}: {problem}")

        if not _ID.match(row.sample) or ".." in row.sample:
            bad("sample", "ids may hold only letters, digits, '_', '.', '-' (no '/', no '..')")
        elif row.sample.lower() in RESERVED_IDS:
            bad(
                "sample",
                f"{row.sample!r} is reserved: results/{row.sample.lower()} holds the workflow's "
                f"aggregate output (reserved: {', '.join(RESERVED_IDS)}); rename the sample",
            )
        elif row.sample in seen:
            bad("sample", f"duplicate id (first used in row {seen[row.sample]})")
        else:
            seen[row.sample] = i
        if not _ID.match(row.condition):
            bad("condition", "must be a non-empty name of letters, digits, '_', '.', '-'")
        if row.kind not in KINDS:
            bad("kind", f"{row.kind!r} is not one of {', '.join(KINDS)}")
            continue
        if row.voxel_nm:
            try:
                if not (math.isfinite(float(row.voxel_nm)) and float(row.voxel_nm) > 0):
                    raise ValueError
            except ValueError:
                bad("voxel_nm", f"{row.voxel_nm!r} is not a positive finite number (nm)")
        if row.kind == "simulate":
            if row.cell_type not in CELL_TYPES:
                bad("cell_type", f"{row.cell_type!r} is not one of {', '.join(CELL_TYPES)}")
            if row.input:
                bad("input", "simulated samples take no input file")
            if row.truth:
                bad("truth", "simulated samples use the simulator's truth; leave empty")
        elif not row.input:
            bad("input", f"{row.kind} samples need an input file")
        # a simulated sample's annotation may also be a file painted by hand (sxtflow napari)
        files = ("annotation",) if row.kind == "simulate" else ("input", "annotation", "truth")
        for column in files:
            value = getattr(row, column)
            if not value:
                continue
            if value == "auto":
                if row.kind != "simulate":
                    bad(column, "'auto' annotations exist only for simulated samples")
            elif _escapes(value, base):
                bad(column, f"relative path {value!r} escapes the working directory")
            elif not (base / value).exists():
                bad(column, f"file {value!r} does not exist")
            elif (base / value).is_dir():
                bad(column, f"{value!r} is a directory, not a file")
    if problems:
        raise InputError(path, "bad sample sheet:\n  " + "\n  ".join(problems))
    sheet["voxel_nm"] = pd.to_numeric(sheet["voxel_nm"], errors="coerce")
    return sheet.set_index("sample", drop=False).sort_index()


def sheet_as_text(sheet: pd.DataFrame) -> pd.DataFrame:
    """The sheet with every column as text again (``voxel_nm`` '' when from the header), the
    form ``workflow/schemas/samples.schema.yaml`` describes."""
    text = sheet["voxel_nm"].map(
        lambda v: "" if pd.isna(v) else np.format_float_positional(float(v), trim="-")
    )
    return sheet.assign(voxel_nm=text)


def set_value(path: str | os.PathLike, sample: str, column: str, value: str) -> Path:
    """Set one cell of a sample sheet, rewriting the file atomically and keeping the rest.

    Comment and blank lines, the column order, every other row and cell are kept as they
    were (byte for byte); a column the sheet lacks is appended to the header, and the edited
    row is padded to the header's width.

    Parameters
    ----------
    path : path-like
        The tab-separated sample sheet.
    sample : str
        Value of the ``sample`` column of the row to edit.
    column : str
        A column of :data:`COLUMNS`.
    value : str
        The new cell (no tabs or line breaks).

    Returns
    -------
    Path

    Raises
    ------
    InputError
        No header, no ``sample`` column, or not exactly one row of that sample.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "s.tsv"
    >>> _ = p.write_text("# my cells\\nsample\\tcondition\\tkind\\na\\twt\\ttomogram\\n")
    >>> _ = set_value(p, "a", "annotation", "annotations/a.mrc")
    >>> print(p.read_text().replace("\\t", " | "), end="")
    # my cells
    sample | condition | kind | annotation
    a | wt | tomogram | annotations/a.mrc
    """
    from .io import atomic_path

    path = Path(path)
    if column not in COLUMNS:
        raise ValueError(f"unknown column {column!r}; known: {', '.join(COLUMNS)}")
    if any(c in str(value) for c in "\t\r\n"):
        raise ValueError(f"a sheet cell cannot hold tabs or line breaks: {value!r}")
    if not path.exists():
        raise InputError(path, "sample sheet does not exist")
    with open(path, newline="") as fh:  # keep the sheet's own line endings
        lines = fh.read().splitlines(keepends=True)

    def split(line: str) -> tuple[list[str], str]:
        body = line.rstrip("\r\n")
        return body.split("\t"), line[len(body) :]

    data = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not data:
        raise InputError(path, "no header line")
    head, end = split(lines[data[0]])
    names = [c.strip() for c in head]
    if "sample" not in names:
        raise InputError(path, "no 'sample' column")
    if column not in names:
        head.append(column)
        names.append(column)
        lines[data[0]] = "\t".join(head) + (end or "\n")
    idx, key = names.index(column), names.index("sample")
    rows = [
        i
        for i in data[1:]
        if len(split(lines[i])[0]) > key and split(lines[i])[0][key].strip() == sample
    ]
    if len(rows) != 1:
        raise InputError(path, f"{len(rows)} rows of sample {sample!r}; expected exactly one")
    fields, end = split(lines[rows[0]])
    fields += [""] * (len(names) - len(fields))
    fields[idx] = str(value)
    lines[rows[0]] = "\t".join(fields) + (end or "\n")
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        fh.write("".join(lines))
    return path
