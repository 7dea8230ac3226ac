"""Statistics of the compare stage: stack tables, aggregate per cell, describe, test.

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

All functions are pure functions of pandas DataFrames (private modules: ``_tables``, the
per-cell tables; ``_tests``, the tests). The figures are in :mod:`sxtflow.plot`.
"""

from ._tables import (
    DEFAULT_OBJECT_MEASURES,
    SUMMARY_COLUMNS,
    cell_table,
    measure_unit,
    per_cell,
    primary_measures,
    reference_condition,
    stack_tables,
    summarise,
)
from ._tests import (
    MAX_PERMUTATIONS,
    TEST_COLUMNS,
    cliffs_delta,
    dunn_test,
    holm,
    mann_whitney,
    test_conditions,
    untested,
)

__all__ = [
    "DEFAULT_OBJECT_MEASURES",
    "SUMMARY_COLUMNS",
    "TEST_COLUMNS",
    "MAX_PERMUTATIONS",
    "primary_measures",
    "stack_tables",
    "per_cell",
    "cell_table",
    "reference_condition",
    "summarise",
    "measure_unit",
    "test_conditions",
    "untested",
    "dunn_test",
    "mann_whitney",
    "holm",
    "cliffs_delta",
]
