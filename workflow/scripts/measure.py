"""Rule measure: per-object morphometry and LAC, per-cell summary."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_measure

log_to(snakemake.log[0])
run_measure(
    snakemake.input.labels,
    snakemake.input.tomogram,
    snakemake.output.organelles,
    snakemake.output.cell,
    snakemake.output.chromatin,
    snakemake.output.chromatin_profile,
    snakemake.output.surface,
    classes=snakemake.params.classes,
    smooth_iterations=snakemake.params.smooth_iterations,
    chromatin=snakemake.params.chromatin,
    surface=snakemake.params.surface,
    **snakemake.params.options,
)
