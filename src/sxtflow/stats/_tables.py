"""Per-sample tables stacked, aggregated per cell (the statistical unit), described; units
of columns from their names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

DEFAULT_OBJECT_MEASURES: tuple[str, ...] = ("volume_um3", "sphericity", "lac_mean_per_um")

_ID_COLUMNS = ("sample", "condition")


SUMMARY_COLUMNS = ["measure", "condition", "n_cells", "mean", "sd", "median", "q25", "q75"]


def stack_tables(tables: Mapping[str, pd.DataFrame], samples: pd.DataFrame) -> pd.DataFrame:
    """Concatenate per-sample tables, adding ``sample`` and ``condition`` columns first.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        One table per sample (a per-cell table with one row, or a per-object table with
        one row per organelle). Keys are sample names.
    samples : DataFrame
        The sample sheet, with at least the columns ``sample`` and ``condition``.

    Returns
    -------
    DataFrame
        All rows of all tables, in the order of ``tables``, with ``sample`` and
        ``condition`` as the first two columns. Existing ``sample``/``condition``
        columns in a table are replaced by the sample sheet's values.

    Raises
    ------
    ValueError
        If a sample is not in the sample sheet, the sheet lacks the columns, names a
        sample twice, or gives a sample no condition.
    """
    missing = [c for c in _ID_COLUMNS if c not in samples.columns]
    if missing:
        raise ValueError(
            f"sample sheet lacks column(s) {missing}; it needs 'sample' and 'condition'"
        )
    sheet_names = samples["sample"].astype(str)
    dup = sorted(set(sheet_names[sheet_names.duplicated()]))
    if dup:
        raise ValueError(f"sample sheet names these samples more than once: {dup}")
    condition_of = dict(zip(sheet_names, samples["condition"], strict=True))
    unknown = [str(s) for s in tables if str(s) not in condition_of]
    if unknown:
        raise ValueError(
            f"sample(s) {unknown} are not in the sample sheet (known: {sorted(condition_of)})"
        )
    parts = []
    for name, table in tables.items():
        cond = condition_of[str(name)]
        if pd.isna(cond) or str(cond).strip() == "":
            raise ValueError(f"sample {name!r} has no condition in the sample sheet")
        body = table.drop(columns=[c for c in _ID_COLUMNS if c in table.columns])
        body = body.reset_index(drop=True)
        ids = pd.DataFrame(
            {"sample": [str(name)] * len(body), "condition": [str(cond)] * len(body)},
            index=body.index,
        )
        parts.append(pd.concat([ids, body], axis=1))
    if not parts:
        return pd.DataFrame(columns=list(_ID_COLUMNS))
    non_empty = [p for p in parts if len(p)]
    out = pd.concat(non_empty or parts, ignore_index=True, sort=False)
    front = list(_ID_COLUMNS)
    return out[front + [c for c in out.columns if c not in front]]


def per_cell(
    objects: pd.DataFrame,
    measures: Sequence[str] = DEFAULT_OBJECT_MEASURES,
    *,
    classes: Sequence[str] | None = None,
    samples: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Reduce a stacked per-object table to one row per cell.

    For every organelle class, the number of objects (``<class>_count``) and the median
    of each measure over that cell's objects (``<class>_<measure>_median``, e.g.
    ``lipid_droplet_volume_um3_median``). Cells, not organelles, are the statistical
    unit: test these columns, not the per-object rows.

    Parameters
    ----------
    objects : DataFrame
        Stacked per-object table (:func:`stack_tables`) with columns ``sample``,
        ``class`` and the measures; ``condition`` is carried over when present.
    measures : sequence of str
        Numeric per-object columns to summarise by their median.
    classes : sequence of str, optional
        Classes to report, in this order. Default: every class present, sorted. A class
        absent from a cell gets count 0 and NaN medians.
    samples : DataFrame, optional
        Sample sheet (``sample``, ``condition``). When given, every sample in it gets a
        row (cells without any object get counts of 0), in the sheet's order, and the
        condition comes from the sheet.

    Returns
    -------
    DataFrame
        One row per cell: ``sample``, ``condition`` (if known), then per class
        ``<class>_count`` followed by ``<class>_<measure>_median`` for each measure.

    Raises
    ------
    ValueError
        On missing columns, non-numeric measures, or a sample in several conditions.
    """
    measures = list(measures)
    need = ["sample", "class", *measures]
    missing = [c for c in need if c not in objects.columns]
    if missing:
        raise ValueError(f"per-object table lacks column(s) {missing}")
    for m in measures:
        if not (
            pd.api.types.is_numeric_dtype(objects[m]) and not pd.api.types.is_bool_dtype(objects[m])
        ):
            raise ValueError(f"measure {m!r} is not numeric (dtype {objects[m].dtype})")
    obj = objects.copy()
    obj["sample"] = obj["sample"].astype(str)
    obj["class"] = obj["class"].astype(str)

    # sample order and condition
    if samples is not None:
        if not set(_ID_COLUMNS) <= set(samples.columns):
            raise ValueError("samples must have columns 'sample' and 'condition'")
        order = list(dict.fromkeys(samples["sample"].astype(str)))
        condition_of = dict(zip(samples["sample"].astype(str), samples["condition"], strict=True))
        unknown = sorted(set(obj["sample"]) - set(order))
        if unknown:
            raise ValueError(f"objects of sample(s) {unknown} are not in the sample sheet")
    else:
        order = list(dict.fromkeys(obj["sample"]))
        condition_of = None
        if "condition" in obj.columns:
            per = obj.groupby("sample", sort=False)["condition"].nunique(dropna=False)
            bad = sorted(per.index[per > 1])
            if bad:
                raise ValueError(f"sample(s) {bad} appear under more than one condition")
            condition_of = dict(zip(obj["sample"], obj["condition"], strict=True))

    if classes is None:
        classes = sorted(obj["class"].unique())
    classes = [str(c) for c in classes]
    obj = obj[obj["class"].isin(classes)]

    grouped = obj.groupby(["sample", "class"], sort=False)
    counts = grouped.size()
    medians = grouped[measures].median() if measures else None

    out = pd.DataFrame({"sample": order})
    if condition_of is not None:
        out["condition"] = [condition_of[s] for s in order]
    columns: dict[str, np.ndarray] = {}
    for cls in classes:
        columns[f"{cls}_count"] = np.array(
            [int(counts.get((s, cls), 0)) for s in order], dtype=np.int64
        )
        for m in measures:
            columns[f"{cls}_{m}_median"] = np.array(
                [
                    float(medians.at[(s, cls), m]) if (s, cls) in medians.index else np.nan
                    for s in order
                ],
                dtype=float,
            )
    return pd.concat([out, pd.DataFrame(columns, index=out.index)], axis=1)


def cell_table(
    cells: pd.DataFrame,
    objects: pd.DataFrame,
    organelles: Sequence[str],
    samples: pd.DataFrame,
) -> pd.DataFrame:
    """The table the conditions are compared on: one row per cell.

    Each cell's own measures (``cells``, stacked per-cell tables) joined with its organelle
    measures reduced per cell (:func:`per_cell`, medians per class), of the objects in the
    cell only (``in_cell``; pieces apart from it are not the cell's). The per-cell tables
    already count the organelles, so :func:`per_cell`'s ``<class>_count`` columns are dropped.

    Parameters
    ----------
    cells : DataFrame
        Stacked per-cell tables (:func:`stack_tables`): ``sample``, ``condition``, measures.
    objects : DataFrame
        Stacked per-object tables: ``sample``, ``class``, measures, optionally ``in_cell``.
    organelles : sequence of str
        The organelle classes (every class but ``ice`` and ``cytoplasm``).
    samples : DataFrame
        The sample sheet (``sample``, ``condition``): every sample gets a row.

    Returns
    -------
    DataFrame
        ``cells`` with the ``<class>_<measure>_median`` columns of every organelle class.
    """
    in_cell = objects[objects["in_cell"].astype(bool)] if "in_cell" in objects else objects
    org = per_cell(in_cell, classes=organelles, samples=samples)
    org = org.drop(columns=[c for c in org.columns if c.endswith("_count")])
    return cells.merge(org, on=list(_ID_COLUMNS), how="left")


def reference_condition(conditions: Sequence[str], reference: str | None = None) -> str:
    """The control condition: ``reference``, or the only condition when there is one.

    Raises
    ------
    ValueError
        ``reference`` is None while there are several conditions.
    """
    if reference is None:
        if len(set(conditions)) > 1:
            raise ValueError(
                f"name the reference condition (one of {', '.join(sorted(set(conditions)))})"
            )
        return next(iter(conditions))
    return reference


def _check_cells(cells: pd.DataFrame) -> None:
    if "condition" not in cells.columns:
        raise ValueError("the per-cell table needs a 'condition' column (see stack_tables)")
    if cells["condition"].isna().any():
        raise ValueError("some cells have no condition")
    if "sample" in cells.columns and cells["sample"].duplicated().any():
        dup = sorted(set(cells.loc[cells["sample"].duplicated(), "sample"].astype(str)))
        raise ValueError(
            f"sample(s) {dup[:5]} appear in several rows: the table must hold one row per cell "
            "(aggregate per-object tables with per_cell first; organelles are not independent)"
        )


def _default_measures(cells: pd.DataFrame) -> list[str]:
    return [
        c
        for c in cells.columns
        if c not in _ID_COLUMNS
        and pd.api.types.is_numeric_dtype(cells[c])
        and not pd.api.types.is_bool_dtype(cells[c])
    ]


def _resolve_measures(cells: pd.DataFrame, measures: Iterable[str] | None) -> list[str]:
    if measures is None:
        return _default_measures(cells)
    if isinstance(measures, str):
        measures = [measures]
    measures = list(measures)
    missing = [m for m in measures if m not in cells.columns]
    if missing:
        raise ValueError(f"measure(s) {missing} are not columns of the table")
    for m in measures:
        if not pd.api.types.is_numeric_dtype(cells[m]) or pd.api.types.is_bool_dtype(cells[m]):
            raise ValueError(f"measure {m!r} is not numeric (dtype {cells[m].dtype})")
    return measures


def primary_measures(cells: pd.DataFrame, requested: Iterable[str] | None = None) -> list[str]:
    """The primary measures of a per-cell table: the family the main claims rest on.

    Parameters
    ----------
    cells : DataFrame
        One row per cell.
    requested : list of str, optional
        Column names chosen in advance (config ``compare.measures``). Every one must be a
        numeric column of ``cells``. Default: :func:`sxtflow.plan.default_measures` of the
        classes with a ``<class>_fraction`` column, those that ``cells`` has.

    Returns
    -------
    list of str
        Column names, in the requested (or default) order, without duplicates.

    Raises
    ------
    ValueError
        If a requested column is missing or not numeric, or ``requested`` is empty.

    Examples
    --------
    >>> cells = pd.DataFrame({"condition": ["a", "b"], "nucleus_fraction": [0.1, 0.2],
    ...                       "cell_volume_um3": [30.0, 31.0], "x_um": [1.0, 2.0]})
    >>> primary_measures(cells)
    ['cell_volume_um3', 'nucleus_fraction']
    >>> primary_measures(cells, ["x_um"])
    ['x_um']
    """
    if requested is None:
        from ..plan import CELL_COLUMNS, default_measures

        classes = [
            c.removesuffix("_fraction")
            for c in cells.columns
            if c.endswith("_fraction") and c not in CELL_COLUMNS
        ]
        return [m for m in default_measures(classes) if m in cells.columns]
    requested = [requested] if isinstance(requested, str) else list(dict.fromkeys(requested))
    if not requested:
        raise ValueError("the list of primary measures is empty (omit it for the default)")
    return _resolve_measures(cells, requested)


def _conditions(cells: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(cells["condition"].astype(str)))


def _values(cells: pd.DataFrame, measure: str, condition: str) -> np.ndarray:
    x = cells.loc[cells["condition"].astype(str) == condition, measure].to_numpy(dtype=float)
    return x[np.isfinite(x)]


def summarise(cells: pd.DataFrame, measures: Iterable[str] | None = None) -> pd.DataFrame:
    """Descriptive statistics per measure and condition.

    Parameters
    ----------
    cells : DataFrame
        One row per cell with a ``condition`` column.
    measures : list of str, optional
        Columns to describe; default every numeric column except ``sample``/``condition``.

    Returns
    -------
    DataFrame
        Tidy, one row per (measure, condition) in column/appearance order:
        ``measure, condition, n_cells, mean, sd, median, q25, q75``. ``n_cells`` counts
        the finite values; ``sd`` uses ddof=1 (NaN for fewer than 2 cells); quartiles use
        linear interpolation.
    """
    _check_cells(cells)
    measures = _resolve_measures(cells, measures)
    rows = []
    for m in measures:
        for cond in _conditions(cells):
            x = _values(cells, m, cond)
            n = x.size
            rows.append(
                {
                    "measure": m,
                    "condition": cond,
                    "n_cells": n,
                    "mean": float(np.mean(x)) if n else np.nan,
                    "sd": float(np.std(x, ddof=1)) if n > 1 else np.nan,
                    "median": float(np.median(x)) if n else np.nan,
                    "q25": float(np.percentile(x, 25)) if n else np.nan,
                    "q75": float(np.percentile(x, 75)) if n else np.nan,
                }
            )
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    out["n_cells"] = out["n_cells"].astype(np.int64)
    return out


_UNIT_SUFFIXES = (
    ("_per_um3", "µm⁻³"),
    ("_per_um2", "µm⁻²"),
    ("_per_um", "µm⁻¹"),
    ("_um3", "µm³"),
    ("_um2", "µm²"),
    ("_um", "µm"),
    ("_nm3", "nm³"),
    ("_nm2", "nm²"),
    ("_nm", "nm"),
    ("_fraction", "fraction"),
    ("_count", "count"),
    ("_percent", "%"),
    ("_pct", "%"),
)
_AGGREGATE_SUFFIX = re.compile(r"_(median|mean|sd|std|min|max|sum|q25|q75)$")


def measure_unit(name: str) -> str:
    """Unit of a column from its name's suffix (after dropping ``_median``/``_mean`` …).

    ``_um3`` → µm³, ``_um2`` → µm², ``_per_um`` → µm⁻¹, ``_um`` → µm, ``_fraction`` →
    fraction, ``_count`` → count; ``""`` when the suffix names no unit (e.g. sphericity).
    """
    base = _AGGREGATE_SUFFIX.sub("", str(name))
    for suffix, unit in _UNIT_SUFFIXES:
        if base.endswith(suffix):
            return unit
    return ""
