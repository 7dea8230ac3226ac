"""Rule train: the voxel classifier from the annotated samples (skops + JSON model card)."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_train

log_to(snakemake.log[0])
run_train(
    snakemake.input.features,
    snakemake.input.annotations,
    snakemake.output.model,
    classes=snakemake.params.classes,
    labels=dict(snakemake.input.items()).get("label_table"),
    tomogram_paths=snakemake.input.tomograms,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
    **snakemake.params.options,
)
