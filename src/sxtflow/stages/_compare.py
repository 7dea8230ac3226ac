"""Stage compare (conditions from the per-cell and per-object tables) and the stacking of
per-sample tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from .. import io
from ._common import _COMPARE, PathLike, log

# --------------------------------------------------------------------------- compare


def run_compare(
    cell_paths: Sequence[PathLike],
    organelle_paths: Sequence[PathLike],
    samples: Sequence[Mapping[str, str]],
    *,
    out_cells: PathLike,
    out_objects: PathLike,
    out_summary: PathLike,
    out_tests: PathLike,
    out_measures: PathLike,
    out_fractions: PathLike | None = None,
    out_lac: PathLike | None = None,
    chromatin_paths: Sequence[PathLike] = (),
    out_chromatin: PathLike | None = None,
    classes: Mapping[str, int],
    reference: str | None = _COMPARE["reference"],
    measures: Sequence[str] | None = _COMPARE["measures"],
    alpha: float = _COMPARE["alpha"],
    n_boot: int = _COMPARE["n_boot"],
    seed: int = 0,
) -> pd.DataFrame:
    """Stack every cell's tables, summarise per condition, test conditions, plot.

    ``measures`` (config ``compare.measures``) names the primary measures: their own
    Benjamini–Hochberg family and the panels of the measures plot; every other column
    is tested as exploratory. Default :func:`sxtflow.plan.default_measures` of ``classes``
    (cell volume, fraction and count of every organelle class; the cell's own measures for
    a cell-only class set). With one condition nothing is tested: the tests table holds
    one row per primary measure whose ``note`` says why, the summary and plots are made.
    ``reference`` defaults to the only condition; with several it is required.
    ``out_fractions`` is drawn only with an organelle class, ``out_chromatin`` needs a nucleus.
    """
    from .. import stats
    from ..plan import default_measures, organelle_classes
    from ..plot import plot_fractions, plot_lac_histograms, plot_measures, plot_radial_profiles

    sheet = pd.DataFrame(list(samples))
    names = list(sheet["sample"])
    if len(names) != len(cell_paths) or len(names) != len(organelle_paths):
        raise ValueError("one cell table and one organelle table per sample are needed")
    conditions = sorted(set(sheet["condition"]))
    reference = stats.reference_condition(conditions, reference)
    cells = stats.stack_tables(
        {s: io.read_table(p) for s, p in zip(names, cell_paths, strict=True)}, sheet
    )
    objects = stats.stack_tables(
        {s: io.read_table(p) for s, p in zip(names, organelle_paths, strict=True)}, sheet
    )
    organelles = organelle_classes(classes)
    cells = stats.cell_table(cells, objects, organelles, sheet)  # the cell is the unit
    io.write_table(out_cells, cells)
    io.write_table(out_objects, objects)
    io.write_table(out_summary, stats.summarise(cells))
    primary = stats.primary_measures(
        cells, default_measures(classes) if measures is None else measures
    )
    if len(conditions) > 1:
        tests = stats.test_conditions(
            cells, reference=reference, primary=primary, n_boot=n_boot, seed=seed, alpha=alpha
        )
    else:
        why = (
            f"one condition ({reference}): nothing to compare; per-condition values are in "
            "summary.tsv and the plots"
        )
        log.info("%s", why)
        tests = stats.untested(cells, primary, reference=reference, note=why)
    io.write_table(out_tests, tests)
    plot_measures(cells, primary, out_measures, reference=reference, tests=tests)
    if out_fractions and organelles:
        plot_fractions(
            cells, [c for c in organelles if f"{c}_fraction" in cells.columns], out_fractions
        )
    if out_lac:
        lac_classes = [c for c in classes if c != "ice" and c in set(objects["class"])]
        plot_lac_histograms(objects, out_lac, classes=lac_classes, reference=reference)
    if out_chromatin:
        if len(chromatin_paths) != len(names):
            raise ValueError("one chromatin profile table per sample is needed")
        profiles = stats.stack_tables(
            {s: io.read_table(p) for s, p in zip(names, chromatin_paths, strict=True)}, sheet
        )
        plot_radial_profiles(profiles, out_chromatin, reference=reference)
    primary_rows = tests[tests["family"] == "primary"]
    log.info(
        "%d cells, %d tests (%d primary), %d primary and %d exploratory significant at FDR %.2f",
        len(cells),
        int(tests["p_value"].notna().sum()),
        int(primary_rows["p_value"].notna().sum()),
        int(primary_rows["significant"].sum()),
        int(tests["significant"].sum() - primary_rows["significant"].sum()),
        alpha,
    )
    return tests


def stack_sample_tables(paths: Sequence[PathLike], out: PathLike) -> pd.DataFrame:
    """Concatenate per-sample tables (that already carry a ``sample`` column)."""
    table = pd.concat([io.read_table(p) for p in paths], ignore_index=True)
    io.write_table(out, table)
    return table
