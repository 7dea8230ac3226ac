"""Compare cells across conditions: stack tables, aggregate per cell, test, plot.

The statistical unit is the **cell** (one tomogram), never the organelle. Organelle
measures are first reduced to one number per cell (:func:`per_cell`, the median per
class) and only then compared between conditions (:func:`test_conditions`); testing
thousands of organelles from a handful of cells would be pseudo-replication.

Tests are rank-based (no normality assumption; samples are small):

* two conditions: Mann–Whitney U, two-sided;
* more than two: Kruskal–Wallis omnibus per measure, then Dunn's post-hoc test of every
  condition against the reference, Holm-adjusted within the measure.

Mann–Whitney p-values are exact for small samples (the exact null distribution of U
without ties; the exact permutation distribution with ties, e.g. organelle counts) and
use the normal approximation only for large samples.

Multiple testing: the measures are split into two families. **Primary** measures are
the few named in advance (config ``compare.measures``; by default those of
:func:`sxtflow.plan.default_measures` for the classes in the table: cell volume, the volume
fraction and count of every organelle class); every other numeric column is **exploratory**. p-values are
Benjamini–Hochberg adjusted within each family (measures × comparisons) into
``q_value``, so the many exploratory columns do not dilute the power on the measures
that matter. Effect sizes are the difference of medians with a seeded
percentile-bootstrap 95 % CI (cells resampled within each condition) and Cliff's delta.

All functions are pure functions of pandas DataFrames, except the two plot functions,
which write a PNG and an SVG of the same stem atomically.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from sxtflow.io import atomic_path

__all__ = [
    "DEFAULT_OBJECT_MEASURES",
    "primary_measures",
    "stack_tables",
    "per_cell",
    "summarise",
    "test_conditions",
    "untested",
    "dunn_test",
    "mann_whitney",
    "holm",
    "cliffs_delta",
    "measure_unit",
    "plot_measures",
    "plot_fractions",
    "plot_lac_histograms",
    "plot_radial_profiles",
    "PROFILE_COLUMNS",
]

DEFAULT_OBJECT_MEASURES: tuple[str, ...] = ("volume_um3", "sphericity", "lac_mean_per_um")

_ID_COLUMNS = ("sample", "condition")

TEST_COLUMNS = [
    "measure",
    "condition",
    "reference",
    "n",
    "n_reference",
    "test",
    "statistic",
    "p_value",
    "q_value",
    "median_difference",
    "ci_low",
    "ci_high",
    "cliffs_delta",
    "significant",
    "family",
    "p_method",
    "omnibus_test",
    "omnibus_statistic",
    "omnibus_p",
    "omnibus_q",
    "note",
]

SUMMARY_COLUMNS = ["measure", "condition", "n_cells", "mean", "sd", "median", "q25", "q75"]


# --------------------------------------------------------------------------- tables


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
        from .plan import CELL_COLUMNS, default_measures

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


# --------------------------------------------------------------------------- statistics


def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm–Bonferroni step-down adjusted p-values; NaN entries are ignored and kept."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    pv = p[ok]
    order = np.argsort(pv, kind="stable")
    adj = (m - np.arange(m)) * pv[order]
    adj = np.minimum(np.maximum.accumulate(adj), 1.0)
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out


def _bh(p_values: np.ndarray) -> np.ndarray:
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(np.clip(p[ok], 0.0, 1.0), method="bh")
    return out


def dunn_test(groups: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Dunn's (1964) pairwise test on pooled ranks, with the tie correction.

    For groups *i*, *j* with mean pooled ranks ``R_i``, ``R_j`` (average ranks for ties,
    over all ``N`` observations of all groups)::

        z_ij = (R_i - R_j) / sqrt((N (N + 1) / 12 - sum(t^3 - t) / (12 (N - 1)))
                                  * (1 / n_i + 1 / n_j))

    where *t* runs over the sizes of tied runs. ``p_ij = 2 (1 - Phi(|z_ij|))``.
    With two groups ``z**2`` equals the tie-corrected Kruskal–Wallis H.

    Parameters
    ----------
    groups : sequence of 1-D arrays
        Observations per group (NaN must be removed beforehand).

    Returns
    -------
    z, p : ndarray, shape (k, k)
        Signed z statistics (positive when row group ranks higher) and unadjusted
        two-sided p-values. Diagonal: z = 0, p = 1.
    """
    groups = [np.asarray(g, dtype=float).ravel() for g in groups]
    sizes = np.array([g.size for g in groups], dtype=float)
    if np.any(sizes < 1):
        raise ValueError("every group needs at least one observation")
    pooled = np.concatenate(groups)
    n_total = pooled.size
    ranks = stats.rankdata(pooled)
    bounds = np.cumsum(np.r_[0, sizes]).astype(int)
    mean_rank = np.array([ranks[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    _, tie_sizes = np.unique(pooled, return_counts=True)
    tie_term = np.sum(tie_sizes.astype(float) ** 3 - tie_sizes) / (12.0 * (n_total - 1))
    var = n_total * (n_total + 1) / 12.0 - tie_term
    k = len(groups)
    z = np.zeros((k, k))
    if var <= 0:
        return z, np.ones((k, k))
    se = np.sqrt(var * (1.0 / sizes[:, None] + 1.0 / sizes[None, :]))
    z = (mean_rank[:, None] - mean_rank[None, :]) / se
    p = 2.0 * stats.norm.sf(np.abs(z))
    np.fill_diagonal(p, 1.0)
    return z, p


def _dunn_p(groups: Sequence[np.ndarray]) -> np.ndarray:
    """Unadjusted Dunn p-values: scikit-posthocs when installed, else :func:`dunn_test`."""
    try:
        import scikit_posthocs as sp
    except ImportError:
        return dunn_test(groups)[1]
    return sp.posthoc_dunn([np.asarray(g, float) for g in groups], p_adjust=None).to_numpy(float)


def cliffs_delta(x: np.ndarray, y: np.ndarray) -> float:
    """Cliff's delta ``P(X > Y) - P(X < Y)`` (= 2 U / (n m) - 1 = rank-biserial r).

    Ranges from -1 (every x below every y) to 1; ties count half. NaN if a sample is empty.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    n, m = x.size, y.size
    if n == 0 or m == 0:
        return np.nan
    ranks = stats.rankdata(np.concatenate([x, y]))
    u = ranks[:n].sum() - n * (n + 1) / 2.0
    return float(2.0 * u / (n * m) - 1.0)


def _rng_for(seed: int, measure: str, condition: str) -> np.random.Generator:
    """A generator that depends on the seed and the comparison, not on the loop order."""
    key = zlib.crc32(f"{measure}\0{condition}".encode())
    return np.random.default_rng([int(seed), key])


def _bootstrap_median_difference(
    x: np.ndarray, y: np.ndarray, n_boot: int, rng: np.random.Generator, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``median(x) - median(y)``, resampling within each group."""
    if n_boot < 1 or x.size < 2 or y.size < 2:
        return np.nan, np.nan
    ix = rng.integers(0, x.size, size=(n_boot, x.size))
    iy = rng.integers(0, y.size, size=(n_boot, y.size))
    diffs = np.median(x[ix], axis=1) - np.median(y[iy], axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(diffs, [tail, 100.0 - tail])
    return float(lo), float(hi)


#: Largest number of distinct group assignments C(n + m, n) enumerated for an exact
#: Mann–Whitney p-value with ties (above it, the normal approximation).
MAX_PERMUTATIONS = 20_000


def mann_whitney(x: ArrayLike, y: ArrayLike) -> tuple[float, float, str]:
    """Two-sided Mann–Whitney U test with an exact p-value whenever it is affordable.

    Parameters
    ----------
    x, y : array_like, 1-D
        Finite observations of the two groups (≥ 1 each), e.g. one value per cell.

    Returns
    -------
    statistic : float
        U of ``x`` (number of pairs with x > y, ties counting half).
    p_value : float
        Two-sided p-value.
    method : str
        ``"exact"`` (exact null distribution of U; no ties, n + m ≤ 60),
        ``"permutation"`` (exact permutation distribution over all C(n + m, n)
        assignments; ties present, at most :data:`MAX_PERMUTATIONS` assignments) or
        ``"asymptotic"`` (normal approximation with tie and continuity correction).

    Notes
    -----
    The normal approximation is anti-conservative for a handful of cells with ties: for
    3 + 3 cells with integer counts it can give p = 0.07 although no assignment of 6
    cells to two groups of 3 can give a p-value below 2 / C(6, 3) = 0.1.

    Examples
    --------
    >>> mann_whitney([7, 6, 7], [2, 3, 3])
    (9.0, 0.1, 'permutation')
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    n, m = x.size, y.size
    pooled = np.concatenate([x, y])
    ties = np.unique(pooled).size < pooled.size
    if not ties and n + m <= 60:
        method, how = "exact", "exact"
    elif ties and _n_assignments(n, m) <= MAX_PERMUTATIONS:
        method, how = stats.PermutationMethod(n_resamples=np.inf), "permutation"
    else:
        method, how = "asymptotic", "asymptotic"
    res = stats.mannwhitneyu(x, y, alternative="two-sided", method=method)
    return float(res.statistic), float(min(res.pvalue, 1.0)), how


def _n_assignments(n: int, m: int) -> float:
    from math import comb

    return float(comb(n + m, n))


def test_conditions(
    cells: pd.DataFrame,
    *,
    reference: str,
    measures: Iterable[str] | None = None,
    primary: Iterable[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Test every measure between each condition and the reference condition.

    Parameters
    ----------
    cells : DataFrame
        One row per cell (never per organelle) with a ``condition`` column.
    reference : str
        The control condition every other condition is compared with.
    measures : list of str, optional
        Columns to test; default every numeric column except ``sample``/``condition``.
    primary : list of str, optional
        The primary measures, chosen before looking at the data (config
        ``compare.measures``; see :func:`primary_measures`). They are tested even if
        ``measures`` omits them, come first in the output, and form their own
        Benjamini–Hochberg family (``family = "primary"``); every other measure is
        ``"exploratory"`` with its own family. Default: one family ``"all"`` holding
        every measure.
    n_boot : int
        Bootstrap resamples for the CI of the median difference (0 disables it).
    seed : int
        Seed of the bootstrap; results are identical for identical inputs and seed.
    alpha : float
        Threshold on ``q_value`` (and, for > 2 conditions, on ``omnibus_q``) for
        ``significant``.

    Returns
    -------
    DataFrame
        One row per (measure, condition ≠ reference), columns ``measure, condition,
        reference, n, n_reference, test, statistic, p_value, q_value, median_difference,
        ci_low, ci_high, cliffs_delta, significant, family, p_method, omnibus_test,
        omnibus_statistic, omnibus_p, omnibus_q, note``.

        * Two conditions: ``test = "mann-whitney-u"`` (two-sided, :func:`mann_whitney`),
          ``statistic`` is U of the condition, ``p_method`` says how p was computed
          (exact / permutation / asymptotic); ``omnibus_*`` are empty/NaN.
        * More than two: ``omnibus_test = "kruskal-wallis"`` (H, p, and its BH q across
          measures); ``test = "dunn-holm"``, ``statistic`` is Dunn's z (positive when the
          condition ranks above the reference) and ``p_value`` is Holm-adjusted over the
          comparisons with the reference within the measure. ``significant`` also needs
          ``omnibus_q < alpha`` (post-hoc results are only read after a significant
          omnibus test).
        * ``q_value``: Benjamini–Hochberg over the finite ``p_value`` of the rows of the
          same ``family`` (``omnibus_q`` likewise over the measures of the family).
        * ``median_difference = median(condition) - median(reference)``, with a percentile
          bootstrap CI (``ci_low``, ``ci_high``; needs ≥ 2 cells per group);
          ``cliffs_delta = P(X > Y) - P(X < Y)``, X the condition, Y the reference.
        * ``n``, ``n_reference``: cells with a finite value.
        * A measure with fewer than 2 cells in a group, or with one value in all cells,
          gets NaN p (``significant`` False) and the reason in ``note``; it is kept.

    Raises
    ------
    ValueError
        If ``reference`` is not a condition, there is a single condition, or the table
        has several rows per sample.
    """
    _check_cells(cells)
    measures = _resolve_measures(cells, measures)
    if primary is None:
        family_of = dict.fromkeys(measures, "all")
    else:
        prim = primary_measures(cells, primary)
        measures = prim + [m for m in measures if m not in prim]
        family_of = {m: "primary" if m in prim else "exploratory" for m in measures}
    conditions = _conditions(cells)
    reference = str(reference)
    if reference not in conditions:
        raise ValueError(f"reference condition {reference!r} not among conditions {conditions}")
    if len(conditions) < 2:
        raise ValueError(f"need at least two conditions to compare, got {conditions}")
    others = [c for c in conditions if c != reference]
    multi = len(conditions) > 2
    labels = cells["condition"].astype(str).to_numpy()
    in_cond = {c: labels == c for c in conditions}

    rows: list[dict] = []
    for m in measures:
        column = cells[m].to_numpy(dtype=float)
        data = {c: column[in_cond[c] & np.isfinite(column)] for c in conditions}
        y = data[reference]
        usable = [c for c in conditions if data[c].size >= 2]
        pooled = np.concatenate([data[c] for c in usable]) if usable else np.array([])
        constant = pooled.size > 0 and np.ptp(pooled) == 0

        omni = {"omnibus_test": "", "omnibus_statistic": np.nan, "omnibus_p": np.nan}
        posthoc: dict[str, tuple[float, float]] = {}
        if multi:
            omni["omnibus_test"] = "kruskal-wallis"
            if reference in usable and len(usable) >= 2 and not constant:
                groups = [data[c] for c in usable]
                h, p_h = stats.kruskal(*groups)
                omni["omnibus_statistic"], omni["omnibus_p"] = float(h), float(p_h)
                z, _ = dunn_test(groups)
                p_raw = _dunn_p(groups)
                ir = usable.index(reference)
                comp = [c for c in usable if c != reference]
                p_adj = holm([p_raw[usable.index(c), ir] for c in comp])
                for c, pa in zip(comp, p_adj, strict=True):
                    posthoc[c] = (float(z[usable.index(c), ir]), float(pa))

        for cond in others:
            x = data[cond]
            row = {
                "measure": m,
                "condition": cond,
                "reference": reference,
                "n": int(x.size),
                "n_reference": int(y.size),
                "test": "dunn-holm" if multi else "mann-whitney-u",
                "statistic": np.nan,
                "p_value": np.nan,
                "family": family_of[m],
                "p_method": "",
                "note": "",
                **omni,
            }
            if x.size < 2 or y.size < 2:
                row["note"] = f"fewer than 2 cells with a value (n={x.size}, n_reference={y.size})"
            elif constant:
                row["note"] = "constant: every cell has the same value"
            elif multi:
                row["statistic"], row["p_value"] = posthoc[cond]
                row["p_method"] = "asymptotic"
            else:
                row["statistic"], row["p_value"], row["p_method"] = mann_whitney(x, y)

            if x.size and y.size:
                row["median_difference"] = float(np.median(x) - np.median(y))
                row["cliffs_delta"] = cliffs_delta(x, y)
            else:
                row["median_difference"] = row["cliffs_delta"] = np.nan
            row["ci_low"], row["ci_high"] = _bootstrap_median_difference(
                x, y, n_boot, _rng_for(seed, m, cond)
            )
            rows.append(row)

    out = pd.DataFrame(
        rows, columns=[c for c in TEST_COLUMNS if c not in ("q_value", "significant", "omnibus_q")]
    )
    q_value = np.full(len(out), np.nan)
    omnibus_q = np.full(len(out), np.nan)
    for fam in dict.fromkeys(out["family"]):
        rows_in = (out["family"] == fam).to_numpy()
        q_value[rows_in] = _bh(out.loc[rows_in, "p_value"].to_numpy(dtype=float))
        if multi:
            sub = out.loc[rows_in]
            per_measure = sub.groupby("measure", sort=False)["omnibus_p"].first()
            q_of = dict(zip(per_measure.index, _bh(per_measure.to_numpy(float)), strict=True))
            omnibus_q[rows_in] = sub["measure"].map(q_of).to_numpy(dtype=float)
    out["q_value"] = q_value
    out["omnibus_q"] = omnibus_q
    significant = out["q_value"].to_numpy(dtype=float) < alpha
    if multi:
        significant &= omnibus_q < alpha
    out["significant"] = np.asarray(significant, dtype=bool)
    out = out[TEST_COLUMNS]
    for c in ("n", "n_reference"):
        out[c] = out[c].astype(np.int64)
    return out.reset_index(drop=True)


# keep pytest from collecting this function when a test module imports it by name
test_conditions.__test__ = False  # type: ignore[attr-defined]


def untested(
    cells: pd.DataFrame,
    primary: Iterable[str],
    *,
    reference: str,
    note: str,
    measures: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The table of :func:`test_conditions` when nothing can be tested (e.g. one condition).

    One row per measure (the primary ones first, ``family`` as in :func:`test_conditions`)
    with ``n`` cells, the condition's median as ``median_difference`` NaN, no p-value,
    ``significant`` False and the reason in ``note``, so the report says why there are no
    tests.

    Examples
    --------
    >>> cells = pd.DataFrame({"condition": ["wt", "wt"], "cell_volume_um3": [30.0, 32.0]})
    >>> t = untested(cells, ["cell_volume_um3"], reference="wt", note="one condition")
    >>> t[["measure", "n", "family", "note"]].values.tolist()
    [['cell_volume_um3', 2, 'primary', 'one condition']]
    """
    _check_cells(cells)
    prim = primary_measures(cells, list(primary)) if primary is not None else []
    rest = [m for m in _resolve_measures(cells, measures) if m not in prim]
    rows = []
    for m in prim + rest:
        n = int(np.isfinite(cells[m].to_numpy(dtype=float)).sum())
        rows.append(
            {
                "measure": m,
                "condition": reference,
                "reference": reference,
                "n": n,
                "n_reference": n,
                "test": "",
                "significant": False,
                "family": "primary" if m in prim else "exploratory",
                "p_method": "",
                "omnibus_test": "",
                "note": note,
            }
        )
    out = pd.DataFrame(rows, columns=TEST_COLUMNS)
    out["significant"] = out["significant"].astype(bool)
    for c in ("n", "n_reference"):
        out[c] = out[c].astype(np.int64)
    return out


# --------------------------------------------------------------------------- plots

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


def _ordered_conditions(cells: pd.DataFrame, reference: str | None) -> list[str]:
    conditions = _conditions(cells)
    if reference is not None:
        reference = str(reference)
        if reference not in conditions:
            raise ValueError(f"reference condition {reference!r} not among conditions {conditions}")
        conditions = [reference] + [c for c in conditions if c != reference]
    return conditions


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_png_svg(fig, path_png: str | os.PathLike) -> tuple[Path, Path]:
    import matplotlib

    path_png = Path(path_png)
    path_svg = path_png.with_suffix(".svg")
    with matplotlib.rc_context({"svg.hashsalt": "sxtflow", "svg.fonttype": "none"}):
        with atomic_path(path_png) as tmp:
            fig.savefig(tmp, format="png", dpi=150)
        with atomic_path(path_svg) as tmp:
            fig.savefig(tmp, format="svg", metadata={"Date": None})
    return path_png, path_svg


def _colours(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _q_label(tests: pd.DataFrame | None, measure: str, condition: str) -> str:
    """``"\nq=0.012*"`` for a tested (measure, condition), ``""`` otherwise."""
    if tests is None or not len(tests):
        return ""
    hit = tests[(tests["measure"] == measure) & (tests["condition"].astype(str) == condition)]
    if not len(hit) or not np.isfinite(hit["q_value"].iloc[0]):
        return ""
    star = "*" if bool(hit["significant"].iloc[0]) else ""
    return f"\nq={hit['q_value'].iloc[0]:.2g}{star}"


def plot_measures(
    cells: pd.DataFrame,
    measures: Iterable[str],
    path_png: str | os.PathLike,
    *,
    reference: str | None = None,
    tests: pd.DataFrame | None = None,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Grid of box (and violin) plots, one panel per measure, cells as jittered points.

    Parameters
    ----------
    cells : DataFrame
        One row per cell with a ``condition`` column.
    measures : list of str
        Numeric columns, one panel each; the y label is the unit parsed from the name
        (:func:`measure_unit`).
    path_png : path-like
        Output PNG; an SVG with the same stem is written beside it. Both atomically.
    reference : str, optional
        Condition drawn first (leftmost); default order of appearance.
    tests : DataFrame, optional
        The table of :func:`test_conditions`; when given, each compared condition's
        x label carries its ``q_value`` (``q=…``, ``*`` when ``significant``).
    seed : int
        Seed of the horizontal jitter (plots are reproducible).

    Returns
    -------
    (Path, Path)
        The PNG and SVG paths.
    """
    _check_cells(cells)
    measures = _resolve_measures(cells, measures)
    if not measures:
        raise ValueError("no measures to plot")
    conditions = _ordered_conditions(cells, reference)
    colours = _colours(len(conditions))
    ncols = min(3, len(measures))
    nrows = -(-len(measures) // ncols)
    width = max(3.2, 0.9 * len(conditions) + 1.4)
    fig = _new_figure(width * ncols, 3.0 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    rng = np.random.default_rng(seed)
    positions = np.arange(1, len(conditions) + 1, dtype=float)
    for k, m in enumerate(measures):
        ax = axes.flat[k]
        data = [_values(cells, m, c) for c in conditions]
        drawn = [(p, d) for p, d in zip(positions, data, strict=True) if d.size]
        violins = [(p, d) for p, d in drawn if d.size >= 3 and np.ptp(d) > 0]
        if violins:
            parts = ax.violinplot(
                [d for _, d in violins],
                positions=[p for p, _ in violins],
                widths=0.8,
                showextrema=False,
            )
            for body in parts["bodies"]:
                body.set_facecolor("0.85")
                body.set_edgecolor("none")
                body.set_alpha(0.8)
        if drawn:
            ax.boxplot(
                [d for _, d in drawn],
                positions=[p for p, _ in drawn],
                widths=0.45,
                showfliers=False,
                medianprops={"color": "black"},
            )
        for p, d, colour in zip(positions, data, colours, strict=True):
            jitter = rng.uniform(-0.12, 0.12, size=d.size)
            ax.scatter(p + jitter, d, s=14, color=colour, alpha=0.85, zorder=3, linewidths=0)
        ax.set_xticks(positions)
        ax.set_xticklabels(
            [
                f"{c}\n(n={d.size}){_q_label(tests, m, c)}"
                for c, d in zip(conditions, data, strict=True)
            ]
        )
        ax.set_xlim(0.4, len(conditions) + 0.6)
        ax.set_title(m, fontsize=9)
        ax.set_ylabel(measure_unit(m) or "value")
    for ax in axes.flat[len(measures) :]:
        ax.set_visible(False)
    return _save_png_svg(fig, path_png)


def plot_fractions(
    cells: pd.DataFrame, classes: Iterable[str], path_png: str | os.PathLike
) -> tuple[Path, Path]:
    """Stacked bars of the mean volume fraction of each class per condition.

    Parameters
    ----------
    cells : DataFrame
        One row per cell with ``condition`` and ``<class>_fraction`` columns.
    classes : list of str
        Class names (``nucleus``) or fraction columns (``nucleus_fraction``).
    path_png : path-like
        Output PNG; an SVG with the same stem is written beside it. Both atomically.

    Returns
    -------
    (Path, Path)
        The PNG and SVG paths.

    Notes
    -----
    Means ignore NaN. When the means add to less than 1, the remainder is drawn as
    "rest of cell".
    """
    _check_cells(cells)
    classes = [classes] if isinstance(classes, str) else list(classes)
    if not classes:
        raise ValueError("no classes to plot")
    cols = [c if c.endswith("_fraction") else f"{c}_fraction" for c in classes]
    missing = [c for c in cols if c not in cells.columns]
    if missing:
        raise ValueError(f"column(s) {missing} are not in the per-cell table")
    conditions = _conditions(cells)
    means = np.array(
        [
            [np.mean(v) if (v := _values(cells, c, cond)).size else np.nan for c in cols]
            for cond in conditions
        ]
    )
    counts = [int((cells["condition"].astype(str) == cond).sum()) for cond in conditions]
    fig = _new_figure(max(3.5, 1.0 * len(conditions) + 2.5), 3.5)
    ax = fig.subplots()
    x = np.arange(len(conditions))
    bottom = np.zeros(len(conditions))
    colours = _colours(len(cols))
    for j, col in enumerate(cols):
        h = np.nan_to_num(means[:, j])
        ax.bar(
            x, h, bottom=bottom, width=0.6, color=colours[j], label=col.removesuffix("_fraction")
        )
        bottom += h
    rest = 1.0 - bottom
    if np.any(rest > 1e-9):
        ax.bar(
            x, np.clip(rest, 0, None), bottom=bottom, width=0.6, color="0.9", label="rest of cell"
        )
    ax.set_xticks(x)
    ax.set_xticklabels([f"{c}\n(n={n})" for c, n in zip(conditions, counts, strict=True)])
    ax.set_ylabel("mean volume fraction")
    ax.set_ylim(0, max(1.0, float(np.nanmax(bottom)) if bottom.size else 1.0))
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return _save_png_svg(fig, path_png)


_LAC_LABELS = {
    "lac_mean_per_um": "mean LAC per object (µm⁻¹)",
    "lac_median_per_um": "median LAC per object (µm⁻¹)",
}


def _lac_long(table: pd.DataFrame, value: str) -> pd.DataFrame:
    """A long table (sample, condition, class, value) from per-object or per-cell rows."""
    if "class" in table.columns:
        if value not in table.columns:
            raise ValueError(f"the per-object table lacks column {value!r}")
        keep = [c for c in ("sample", "condition", "class", value) if c in table.columns]
        return table[keep]
    suffix = f"_{value}"
    cols = [c for c in table.columns if c.endswith(suffix)]
    if not cols:
        raise ValueError(
            f"the table has neither a 'class' column nor per-cell columns '<class>{suffix}'"
        )
    ids = [c for c in ("sample", "condition") if c in table.columns]
    long = table.melt(id_vars=ids, value_vars=cols, var_name="class", value_name=value)
    long["class"] = long["class"].str.removesuffix(suffix)
    return long


def plot_lac_histograms(
    table: pd.DataFrame,
    path_png: str | os.PathLike,
    *,
    classes: Iterable[str] | None = None,
    value: str = "lac_mean_per_um",
    reference: str | None = None,
    bins: int | None = None,
) -> tuple[Path, Path]:
    """Histograms of linear absorption coefficient (LAC) per class, one curve per condition.

    Parameters
    ----------
    table : DataFrame
        Either the stacked per-object table (columns ``sample``, ``condition``,
        ``class`` and ``value``; one entry per organelle) or the per-cell table (columns
        ``condition`` and ``<class>_<value>``, e.g. ``nucleus_lac_mean_per_um``; one
        entry per cell and class).
    path_png : path-like
        Output PNG; an SVG with the same stem is written beside it. Both atomically.
    classes : list of str, optional
        Classes to draw, one panel each, in this order. Default: every class present
        except ``ice``, in order of appearance.
    value : str
        The LAC column (µm⁻¹), e.g. ``lac_mean_per_um`` or ``lac_median_per_um``.
    reference : str, optional
        Condition drawn first; default order of appearance.
    bins : int, optional
        Bins per panel; default ``numpy.histogram_bin_edges(..., "auto")`` of the
        pooled values, at most 40. The edges are shared by the conditions of a panel.

    Returns
    -------
    (Path, Path)
        The PNG and SVG paths.

    Notes
    -----
    Each curve is a density (area 1), so conditions with different numbers of objects
    compare; the legend gives the numbers of cells and of objects behind each curve.
    Organelles of one cell are not independent: read these histograms as a description,
    and the per-cell tests (:func:`test_conditions`) for differences.
    """
    if "condition" not in table.columns:
        raise ValueError("the table needs a 'condition' column (see stack_tables)")
    if bins is not None and bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    long = _lac_long(table, value)
    if not pd.api.types.is_numeric_dtype(long[value]):
        raise ValueError(f"column {value!r} is not numeric (dtype {long[value].dtype})")
    long = long[np.isfinite(long[value].to_numpy(dtype=float))]
    long = long.assign(
        **{"class": long["class"].astype(str), "condition": long["condition"].astype(str)}
    )
    present = list(dict.fromkeys(long["class"]))
    if classes is None:
        classes = [c for c in present if c != "ice"]
    else:
        classes = [classes] if isinstance(classes, str) else [str(c) for c in classes]
        missing = [c for c in classes if c not in present]
        if missing:
            raise ValueError(f"no finite {value!r} for class(es) {missing} (present: {present})")
    if not classes:
        raise ValueError(f"no class with a finite {value!r} to plot")
    from matplotlib.ticker import MaxNLocator

    conditions = _ordered_conditions(table, reference)
    colours = dict(zip(conditions, _colours(len(conditions)), strict=True))
    ncols = min(3, len(classes))
    nrows = -(-len(classes) // ncols)
    fig = _new_figure(4.0 * ncols, 3.0 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, cls in enumerate(classes):
        ax = axes.flat[k]
        sub = long[long["class"] == cls]
        v = sub[value].to_numpy(dtype=float)
        lo, hi = float(v.min()), float(v.max())
        if hi - lo < 1e-12:
            lo, hi = lo - 0.005, hi + 0.005
        if bins is None:
            n_bins = min(40, np.histogram_bin_edges(v, bins="auto").size - 1)
        else:
            n_bins = bins
        edges = np.linspace(lo, hi, max(1, n_bins) + 1)
        for cond in conditions:
            sel = sub[sub["condition"] == cond]
            if not len(sel):
                continue
            h, _ = np.histogram(sel[value].to_numpy(dtype=float), bins=edges, density=True)
            n_cells = sel["sample"].nunique() if "sample" in sel.columns else len(sel)
            n_obj = len(sel)
            ax.stairs(
                h,
                edges,
                color=colours[cond],
                linewidth=1.5,
                label=f"{cond} ({n_cells} cell{'s' * (n_cells != 1)}, "
                f"{n_obj} object{'s' * (n_obj != 1)})",
            )
            ax.stairs(h, edges, color=colours[cond], alpha=0.12, fill=True)
            # every object as a tick under the axis: few objects stay readable
            ax.plot(
                sel[value].to_numpy(dtype=float),
                np.zeros(n_obj),
                linestyle="none",
                marker="|",
                markersize=9,
                color=colours[cond],
                clip_on=False,
            )
        ax.set_title(cls, fontsize=9)
        ax.set_xlabel(_LAC_LABELS.get(value, f"{value} (µm⁻¹)"))
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_ylabel("density (per µm⁻¹)")
        ax.legend(fontsize=7, frameon=False)
    for ax in axes.flat[len(classes) :]:
        ax.set_visible(False)
    return _save_png_svg(fig, path_png)


PROFILE_COLUMNS = ("sample", "condition", "bin", "heterochromatin_fraction")


def plot_radial_profiles(
    profiles: pd.DataFrame,
    path_png: str | os.PathLike,
    *,
    value: str = "heterochromatin_fraction",
    x: str = "bin",
    x_label: str | None = None,
    reference: str | None = None,
) -> tuple[Path, Path]:
    """Radial profiles (e.g. chromatin) per condition: each cell thin, the median bold.

    Parameters
    ----------
    profiles : DataFrame
        Long table, one row per cell and radial bin, columns ``sample``, ``condition``,
        ``x`` (default ``bin``: the radial bin index of
        :func:`sxtflow.chromatin.radial_profile`, 0 = nuclear envelope, last = core; or a
        distance column such as ``depth_um``) and
        ``value`` (default ``heterochromatin_fraction``: the fraction of the shell's
        nuclear volume that is heterochromatin, 0–1).
    path_png : path-like
        Output PNG; an SVG with the same stem is written beside it. Both atomically.
    value, x : str
        Columns of the y and x axes; units are parsed from the names
        (:func:`measure_unit`).
    x_label : str, optional
        Label of the x axis, e.g. ``"radial bin (0 = nuclear envelope)"``; default the
        column name with its unit.
    reference : str, optional
        Condition drawn first (left panel); default order of appearance.

    Returns
    -------
    (Path, Path)
        The PNG and SVG paths.

    Raises
    ------
    ValueError
        On missing or non-numeric columns, or a (sample, x) pair given twice (with a
        ``nucleus_id`` column, the profiles of several nuclei of one cell are averaged
        instead).

    Notes
    -----
    One panel per condition (every cell's profile as a thin line, the per-bin median
    across cells bold with the interquartile band shaded) and a last panel overlaying the
    condition medians. The cell is the unit: the band spreads over cells, not voxels.
    """
    need = ["sample", "condition", x, value]
    missing = [c for c in need if c not in profiles.columns]
    if missing:
        raise ValueError(f"the profile table lacks column(s) {missing}; it needs {need}")
    for c in (x, value):
        if not pd.api.types.is_numeric_dtype(profiles[c]):
            raise ValueError(f"column {c!r} is not numeric (dtype {profiles[c].dtype})")
    prof = profiles[need].copy()
    prof["sample"] = prof["sample"].astype(str)
    prof["condition"] = prof["condition"].astype(str)
    if "nucleus_id" in profiles.columns:
        # several nuclei in one cell: one profile per cell (the mean), the cell is the unit
        prof = prof.groupby(["sample", "condition", x], sort=False, as_index=False)[value].mean()
    dup = prof.duplicated(["sample", x])
    if dup.any():
        first = prof.loc[dup, ["sample", x]].iloc[0].tolist()
        raise ValueError(f"(sample, {x}) = {first} appears more than once in the profile table")
    prof = prof[np.isfinite(prof[value].to_numpy(dtype=float))]
    if not len(prof):
        raise ValueError(f"no finite {value!r} to plot")
    conditions = _ordered_conditions(prof, reference)
    colours = dict(zip(conditions, _colours(len(conditions)), strict=True))
    x_unit = measure_unit(x)
    if x_label is None:
        x_label = (
            "radial bin (0 = nuclear envelope, last = core)"
            if x == "bin"
            else f"{x} ({x_unit})"
            if x_unit
            else x
        )
    y_unit = measure_unit(value)
    y_label = value.replace("_", " ") if y_unit in ("", "fraction") else f"{value} ({y_unit})"
    fig = _new_figure(3.2 * (len(conditions) + 1), 3.2)
    axes = fig.subplots(1, len(conditions) + 1, sharey=True, squeeze=False)[0]
    for ax, cond in zip(axes, conditions, strict=False):
        sub = prof[prof["condition"] == cond].sort_values(x)
        for _, cell in sub.groupby("sample", sort=False):
            ax.plot(cell[x], cell[value], color=colours[cond], alpha=0.35, linewidth=0.8)
        q = sub.groupby(x)[value].quantile([0.25, 0.5, 0.75]).unstack()
        ax.fill_between(q.index, q[0.25], q[0.75], color=colours[cond], alpha=0.2, linewidth=0)
        ax.plot(q.index, q[0.5], color=colours[cond], linewidth=2.2)
        axes[-1].plot(
            q.index,
            q[0.5],
            color=colours[cond],
            linewidth=2.2,
            label=f"{cond} (n={sub['sample'].nunique()})",
        )
        ax.set_title(f"{cond} (n={sub['sample'].nunique()} cells)", fontsize=9)
        ax.set_xlabel(x_label)
    axes[0].set_ylabel(y_label)
    axes[-1].set_title("median per condition", fontsize=9)
    axes[-1].set_xlabel(x_label)
    axes[-1].legend(fontsize=7, frameon=False)
    return _save_png_svg(fig, path_png)
