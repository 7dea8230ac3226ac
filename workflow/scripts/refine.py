"""Rule refine: per-class clean-up of the classifier's labels in physical units."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_refine

log_to(snakemake.log[0])
run_refine(
    snakemake.input.prediction,
    snakemake.output.labels,
    classes=snakemake.params.classes,
    rules=snakemake.params.rules,
    tomogram_path=snakemake.input.tomogram,
    threads=snakemake.threads,
)
