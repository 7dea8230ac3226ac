"""Rule predict: labels and uncertainty, block-wise."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_predict

log_to(snakemake.log[0])
run_predict(
    snakemake.input.features,
    snakemake.input.model,
    snakemake.output.labels,
    snakemake.output.uncertainty,
    snakemake.output.probabilities,
    tomogram_path=snakemake.input.tomogram,
    threads=snakemake.threads,
    **snakemake.params.options,
)
