"""The label table: one namespace of integer label values shared by annotations, truth,
predictions and measurements, and the segmentation classes they map onto.

A table is a tab-separated file with one row per label:

========== ==================================================================================
column     meaning
========== ==================================================================================
value      integer 1–255, unique (0 means "not annotated" and is never a label)
name       unique name: a letter, then letters, digits, ``_`` (it becomes a column prefix,
           e.g. ``granule_fraction``)
segment_as the class a classifier is trained to see for this label (a name of the table whose
           own ``segment_as`` is itself); empty = the label is its own class
parent     the label it lies inside (a name of the table), ``cell`` (inside the cell) or empty
           (outside the cell, e.g. ice); used when ``segment_as`` is not among the classes
colour     ``#rrggbb`` for meshes and overlays; empty = a colour from a fixed palette
========== ==================================================================================

The workflow reads ``resources/labels.tsv`` of the working directory (config ``labels``), else
the bundled table (``sxtflow/data/labels.tsv``, the same file as the repository's
``resources/labels.tsv``). A lab adds its own classes (nuclear envelope, granules …) by adding
rows. Which of them are segmented is the config's ``classes``; every other label maps onto
the class set through :meth:`LabelTable.class_of`: itself if it is a class, else its
``segment_as``, else the nearest ancestor (``parent`` chain) that is a class; the root
``cell`` stands for ``cytoplasm`` (the cell's ground class), so with the classes ``[ice,
cytoplasm]`` every organelle label becomes ``cytoplasm``. Value 0 means "not annotated" in
sparse annotations and "not scored" in truth volumes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .core import InputError
from .io import read_text_table

__all__ = [
    "LabelTable",
    "load_labels",
    "locate_labels",
    "default_labels",
    "UNLABELLED",
    "CELL",
    "MEDIUM",
    "GROUND",
    "RESERVED_NAMES",
    "COLUMNS",
]

UNLABELLED = 0
#: The root of every cellular label's ``parent`` chain ("inside the cell"); also the name of
#: the whole-cell row of the measurement tables, so it cannot name a label.
CELL = "cell"
#: The embedding medium outside the cell: not measured, not part of "cell".
MEDIUM = "ice"
#: The cell's ground class: what the root ``cell`` maps onto when no finer class applies.
GROUND = "cytoplasm"
#: Names a label cannot take: they are prefixes of per-cell columns already
#: (``cell_volume_um3``, ``body_volume_um3``, ``protrusion_volume_um3``).
RESERVED_NAMES = frozenset({CELL, "body", "protrusion", "surface", "n"})
COLUMNS = ("value", "name", "segment_as", "parent", "colour")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_HEX = re.compile(r"^#[0-9A-Fa-f]{6}$")
# tab20 without matplotlib (planning must stay cheap)
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
)  # fmt: skip


@dataclass(frozen=True)
class LabelTable:
    """Label values, names, segmentation classes, hierarchy and colours.

    Build it with :func:`load_labels` (which checks the file); ``table`` has the columns
    :data:`COLUMNS` (``value`` int, the others str) in file order, ``source`` says where it
    came from (a path, or ``"bundled"``).
    """

    table: pd.DataFrame
    source: str = "bundled"

    # ------------------------------------------------------------------ lookups

    @property
    def names(self) -> list[str]:
        """Every label name, in table order."""
        return list(self.table["name"])

    @property
    def values(self) -> dict[str, int]:
        """Label name → value."""
        return dict(zip(self.table["name"], self.table["value"].astype(int), strict=True))

    @property
    def segmentation_classes(self) -> list[str]:
        """Names that are their own ``segment_as``: the classes the table offers."""
        t = self.table
        return list(t.loc[t["segment_as"] == t["name"], "name"])

    def value(self, name: str) -> int:
        """Label value of a name; ``KeyError`` naming the unknown label otherwise."""
        hit = self.table.loc[self.table["name"] == name, "value"]
        if hit.empty:
            raise KeyError(f"unknown label {name!r}; known: {', '.join(self.names)}")
        return int(hit.iloc[0])

    def name(self, value: int) -> str:
        """Name of a label value; ``KeyError`` otherwise."""
        hit = self.table.loc[self.table["value"] == int(value), "name"]
        if hit.empty:
            raise KeyError(f"unknown label value {value}")
        return str(hit.iloc[0])

    def colour(self, name: str) -> str:
        """``#rrggbb`` of a label (``cell`` → the colour of ``cytoplasm`` when present)."""
        if name == CELL and name not in self.names:
            name = GROUND if GROUND in self.names else self.names[0]
        hit = self.table.loc[self.table["name"] == name, "colour"]
        if hit.empty:
            raise KeyError(f"unknown label {name!r}; known: {', '.join(self.names)}")
        return str(hit.iloc[0])

    def _row(self, name: str):
        return self.table.loc[self.table["name"] == name].iloc[0]

    # ------------------------------------------------------------------ classes

    def check_classes(self, classes: Iterable[str], *, what: str = "classes") -> list[str]:
        """The class names, or ``ValueError`` naming those not in the table.

        Examples
        --------
        >>> default_labels().check_classes(["ice", "cytoplasm"])
        ['ice', 'cytoplasm']
        """
        classes = list(classes)
        unknown = [c for c in classes if c not in self.names]
        if unknown:
            raise ValueError(
                f"{what}: {', '.join(map(repr, unknown))} not in the label table "
                f"({self.source}); known: {', '.join(self.names)}. Add a row to the table "
                "(resources/labels.tsv) for a class of your own"
            )
        dupes = sorted({c for c in classes if classes.count(c) > 1})
        if dupes:
            raise ValueError(f"{what}: {dupes} listed twice")
        return classes

    def class_values(self, classes: Iterable[str]) -> dict[str, int]:
        """Class name → label value, in the given order (``ValueError`` for unknown names).

        Examples
        --------
        >>> default_labels().class_values(["ice", "nucleus"])
        {'ice': 1, 'nucleus': 4}
        """
        return {c: self.value(c) for c in self.check_classes(classes)}

    def class_of(self, name: str, classes: Iterable[str]) -> str | None:
        """The class of ``classes`` a label is segmented as, or None.

        The label itself if it is a class; else its ``segment_as``; else the same for its
        ``parent``, and so on up the chain; the root ``cell`` becomes ``cytoplasm`` when that
        is a class. None when nothing on the chain is a class (e.g. ``ice`` without an
        ``ice`` class).

        Examples
        --------
        >>> t = default_labels()
        >>> t.class_of("nucleolus", ["ice", "cytoplasm", "nucleus"])
        'nucleus'
        >>> t.class_of("mitochondrion", ["ice", "cytoplasm"])
        'cytoplasm'
        """
        wanted = set(classes)
        seen: set[str] = set()
        current: str | None = name
        while current and current not in seen:
            if current in wanted:
                return current
            seen.add(current)
            if current == CELL:
                return GROUND if GROUND in wanted else None
            row = self._row(current)
            if row["segment_as"] in wanted:
                return str(row["segment_as"])
            current = row["parent"] or None
        return None

    def segmentation_lut(self, classes: Iterable[str]) -> np.ndarray:
        """Lookup table (uint8, length 256) mapping label values to class values.

        Every label maps to :meth:`class_of` (``filopodium`` → ``cytoplasm``), labels on no
        class's chain and values not in the table map to 0.
        """
        classes = list(classes)
        lut = np.zeros(256, dtype=np.uint8)
        for name, value in self.values.items():
            target = self.class_of(name, classes)
            if target is not None:
                lut[value] = self.value(target)
        return lut

    def to_classes(self, fine: np.ndarray, classes: Iterable[str]) -> np.ndarray:
        """Map a label volume onto the segmentation ``classes`` (uint8, 0 stays 0)."""
        return self.segmentation_lut(classes)[np.asarray(fine, dtype=np.uint8)]

    def unmapped_values(self, values: Iterable[int], classes: Iterable[str]) -> dict:
        """Of the non-zero ``values``, those not in the table and those mapping to no class.

        Returns ``{"unknown": [...], "unmapped": [...]}`` (sorted ints).
        """
        lut = self.segmentation_lut(classes)
        known = set(self.values.values())
        vals = sorted({int(v) for v in values} - {UNLABELLED})
        return {
            "unknown": [v for v in vals if v not in known],
            "unmapped": [v for v in vals if v in known and lut[v] == 0],
        }

    def colours(self, classes: Iterable[str]) -> dict[str, str]:
        """Class name → colour, plus ``cell`` (the ground class's colour)."""
        out = {c: self.colour(c) for c in classes}
        out[CELL] = self.colour(CELL)
        return out

    def to_records(self) -> list[dict]:
        """The table as JSON-ready rows (for model cards)."""
        return [
            {k: (int(v) if k == "value" else str(v)) for k, v in row.items()}
            for row in self.table[list(COLUMNS)].to_dict("records")
        ]


# --------------------------------------------------------------------------- loading


def _bundled_path():
    return resources.files("sxtflow").joinpath("data/labels.tsv")


def _check(table: pd.DataFrame, path) -> pd.DataFrame:
    """Validate a table read by :func:`sxtflow.io.read_text_table`; every problem at once,
    with its row (1 = first data row)."""
    problems: list[str] = []
    names = list(table["name"])
    values: list[int] = []
    for i, row in enumerate(table.itertuples(index=False), start=1):
        where = f"row {i} ({row.name!r})"
        try:
            v = int(row.value)
            if not 1 <= v <= 255:
                raise ValueError
        except ValueError:
            problems.append(
                f"{where}: value: {row.value!r} is not an integer 1–255 (0 = unlabelled)"
            )
            v = -i
        values.append(v)
        if not _NAME.match(row.name):
            problems.append(f"{where}: name: must be a letter, then letters, digits or '_'")
        elif row.name in RESERVED_NAMES:
            problems.append(
                f"{where}: name: {row.name!r} is reserved (a column prefix of the tables)"
            )
        if row.colour and not _HEX.match(row.colour):
            problems.append(f"{where}: colour: {row.colour!r} is not #rrggbb")
        if row.parent and row.parent != CELL and row.parent not in names:
            problems.append(f"{where}: parent: {row.parent!r} is not a name of the table or 'cell'")
    for col, items in (("value", values), ("name", names)):
        seen: dict = {}
        for i, item in enumerate(items, start=1):
            if item in seen and not (col == "value" and item < 0):
                problems.append(f"row {i}: {col}: {item!r} also in row {seen[item]}")
            seen.setdefault(item, i)
    table["segment_as"] = [s or n for s, n in zip(table["segment_as"], names, strict=True)]
    own = dict(zip(names, table["segment_as"], strict=True))
    for i, (name, seg) in enumerate(own.items(), start=1):
        if seg not in own:
            problems.append(f"row {i} ({name!r}): segment_as: {seg!r} is not a name of the table")
        elif own[seg] != seg:
            problems.append(
                f"row {i} ({name!r}): segment_as: {seg!r} is not a class "
                f"(its own segment_as is {own[seg]!r})"
            )
    parent = dict(zip(names, table["parent"], strict=True))
    for name in names:
        chain, current = [name], parent.get(name)
        while current and current in parent:
            if current in chain:
                problems.append(f"parent: cycle {' -> '.join([*chain, current])}")
                break
            chain.append(current)
            current = parent[current]
    if problems:
        raise InputError(path, "bad label table:\n  " + "\n  ".join(dict.fromkeys(problems)))
    table["value"] = values
    table["colour"] = [
        c or _PALETTE[v % len(_PALETTE)] for c, v in zip(table["colour"], values, strict=True)
    ]
    return table.reset_index(drop=True)


def _read(path) -> pd.DataFrame:
    return read_text_table(
        path,
        COLUMNS,
        required=("value", "name"),
        what="label table",
        empty="label table has no rows",
    )


def load_labels(path: str | os.PathLike | None = None) -> LabelTable:
    """Read and check a label table (TSV; columns in the module docstring).

    Parameters
    ----------
    path : path-like, optional
        The table; ``None`` = the bundled one (``sxtflow/data/labels.tsv``).

    Returns
    -------
    LabelTable
        ``source`` is the path (or ``"bundled"``).

    Raises
    ------
    InputError
        Missing file, unparsable table, or (all at once, with their rows) bad values,
        duplicate values or names, reserved or malformed names, ``segment_as`` that is not
        a class of the table, unknown parents, parent cycles, bad colours.

    Examples
    --------
    >>> t = load_labels()
    >>> t.value("nucleus"), t.class_of("heterochromatin", ["ice", "cytoplasm", "nucleus"])
    (4, 'nucleus')
    """
    if path is None:
        return default_labels()
    path = Path(path)
    raw = _read(path)
    return LabelTable(_check(raw, path), str(path))


@cache
def default_labels() -> LabelTable:
    """The bundled label table (``sxtflow/data/labels.tsv``)."""
    with resources.as_file(_bundled_path()) as path:
        raw = _read(path)
    return LabelTable(_check(raw, "bundled labels.tsv"), "bundled")


def locate_labels(
    path: str | os.PathLike | None = None,
    base_dir: str | os.PathLike = ".",
    default: str = "resources/labels.tsv",
) -> Path | None:
    """Where the workflow's label table is: config ``labels`` (must exist), else ``default``
    in ``base_dir`` when it exists, else None (the bundled table).

    Raises
    ------
    InputError
        A configured ``path`` that does not exist.
    """
    base = Path(base_dir)
    if path:
        found = base / path
        if not found.is_file():
            raise InputError(found, "label table (config 'labels') does not exist")
        return found
    found = base / default
    return found if found.is_file() else None
