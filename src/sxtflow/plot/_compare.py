"""Figures of the compare stage: measures per condition, fractions, LAC histograms and
radial chromatin profiles, each written as a PNG and an SVG of one stem (atomically).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path
from ..stats._tables import _check_cells, _conditions, _resolve_measures, _values, measure_unit


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
        The table of :func:`sxtflow.stats.test_conditions`; when given, each compared condition's
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
    and the per-cell tests (:func:`sxtflow.stats.test_conditions`) for differences.
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
        :func:`sxtflow.quantify.radial_profile`, 0 = nuclear envelope, last = core; or a
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
