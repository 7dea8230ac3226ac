"""Rule predict: labels, probabilities, uncertainty and annotation suggestions, block-wise."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_predict

log_to(snakemake.log[0])
run_predict(
    snakemake.input.tomogram,
    snakemake.input.model,
    snakemake.output.labels,
    snakemake.output.uncertainty,
    snakemake.output.probabilities,
    out_suggestions=snakemake.output.suggestions,
    out_preview=snakemake.output.preview,
    threads=snakemake.threads,
    **snakemake.params.options,
)
