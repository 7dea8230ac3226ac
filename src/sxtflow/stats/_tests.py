"""Rank-based tests between conditions, multiple-testing adjustment and effect sizes."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from ._tables import _check_cells, _conditions, _resolve_measures, primary_measures

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
    measures, family_of = _families(cells, measures, primary)
    conditions = _conditions(cells)
    reference = str(reference)
    if reference not in conditions:
        raise ValueError(f"reference condition {reference!r} not among conditions {conditions}")
    if len(conditions) < 2:
        raise ValueError(f"need at least two conditions to compare, got {conditions}")
    labels = cells["condition"].astype(str).to_numpy()
    in_cond = {c: labels == c for c in conditions}
    rows: list[dict] = []
    for m in measures:
        column = cells[m].to_numpy(dtype=float)
        data = {c: column[in_cond[c] & np.isfinite(column)] for c in conditions}
        rows += _measure_rows(m, data, reference, family_of[m], n_boot=n_boot, seed=seed)
    out = pd.DataFrame(
        rows, columns=[c for c in TEST_COLUMNS if c not in ("q_value", "significant", "omnibus_q")]
    )
    return _adjust(out, multi=len(conditions) > 2, alpha=alpha)


def _families(cells, measures, primary) -> tuple[list[str], dict[str, str]]:
    """The measures to test (primary ones first) and the multiple-testing family of each."""
    measures = _resolve_measures(cells, measures)
    if primary is None:
        return measures, dict.fromkeys(measures, "all")
    prim = primary_measures(cells, primary)
    measures = prim + [m for m in measures if m not in prim]
    return measures, {m: "primary" if m in prim else "exploratory" for m in measures}


def _omnibus(data: dict, usable: list[str], reference: str, constant: bool):
    """Kruskal–Wallis over the usable conditions, then Dunn (Holm) against the reference.

    Returns the ``omnibus_*`` columns and ``{condition: (z, Holm-adjusted p)}``.
    """
    omni = {"omnibus_test": "kruskal-wallis", "omnibus_statistic": np.nan, "omnibus_p": np.nan}
    posthoc: dict[str, tuple[float, float]] = {}
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
    return omni, posthoc


def _measure_rows(
    m: str, data: dict, reference: str, family: str, *, n_boot: int, seed: int
) -> list[dict]:
    """One row per condition ≠ reference for measure ``m`` (``data``: finite values per
    condition, in the table's order): test, p (unadjusted across measures), effect sizes."""
    conditions = list(data)
    multi = len(conditions) > 2
    y = data[reference]
    usable = [c for c in conditions if data[c].size >= 2]
    pooled = np.concatenate([data[c] for c in usable]) if usable else np.array([])
    constant = pooled.size > 0 and np.ptp(pooled) == 0
    omni = {"omnibus_test": "", "omnibus_statistic": np.nan, "omnibus_p": np.nan}
    posthoc: dict[str, tuple[float, float]] = {}
    if multi:
        omni, posthoc = _omnibus(data, usable, reference, constant)
    rows = []
    for cond in (c for c in conditions if c != reference):
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
            "family": family,
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
    return rows


def _adjust(out: pd.DataFrame, *, multi: bool, alpha: float) -> pd.DataFrame:
    """Benjamini–Hochberg ``q_value`` (and ``omnibus_q``) within each family, ``significant``,
    the columns of :data:`TEST_COLUMNS` in order."""
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
