"""Rule chromatin: hetero/euchromatin split of the nucleus (table + radial profile)."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_chromatin

log_to(snakemake.log[0])
run_chromatin(
    snakemake.input.labels,
    snakemake.input.tomogram,
    snakemake.output.chromatin,
    snakemake.output.chromatin_profile,
    classes=snakemake.params.classes,
    chromatin=snakemake.params.chromatin,
)
