"""Rule evaluate: Dice/IoU per class against the ground truth."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_evaluate

log_to(snakemake.log[0])
run_evaluate(
    snakemake.input.labels,
    snakemake.input.truth,
    snakemake.output.evaluation,
    classes=snakemake.params.classes,
    labels=dict(snakemake.input.items()).get("label_table"),
    ignore=snakemake.params.ignore,
    sample=snakemake.wildcards.sample,
    annotated=snakemake.params.annotated,
)
