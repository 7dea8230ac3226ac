"""Rule annotate_virtual: sparse, manual-style annotations drawn from the simulator's truth."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_annotate

log_to(snakemake.log[0])
run_annotate(
    snakemake.input.labels,
    snakemake.output.annotation,
    classes=snakemake.params.classes,
    seed=snakemake.params.seed,
    **snakemake.params.annotation,
)
