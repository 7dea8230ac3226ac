"""Rule measure: per-object morphometry and LAC, per-cell summary, surface protrusions."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_measure

log_to(snakemake.log[0])
run_measure(
    snakemake.input.labels,
    snakemake.input.tomogram,
    snakemake.output.organelles,
    snakemake.output.cell,
    out_surface=snakemake.output.surface,
    classes=snakemake.params.classes,
    smooth_iterations=snakemake.params.smooth_iterations,
    surface=snakemake.params.surface,
    **snakemake.params.options,
)
