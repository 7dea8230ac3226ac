"""Rule simulate: a simulated cell with ground truth and its raw tilt series."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_simulate

log_to(snakemake.log[0])
run_simulate(
    snakemake.output.projections,
    snakemake.output.labels,
    snakemake.output.lac,
    cell_type=snakemake.params.cell_type,
    condition=snakemake.params.condition,
    seed=snakemake.params.seed,
    **snakemake.params.sim,
)
