"""Rule mesh: surfaces per class (GLB + PLY), 3D render and virtual-slice panel."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_mesh

log_to(snakemake.log[0])
run_mesh(
    snakemake.input.labels,
    snakemake.input.tomogram,
    snakemake.output.scene,
    snakemake.output.ply,
    snakemake.output.render,
    snakemake.output.slices,
    classes=snakemake.params.classes,
    labels=dict(snakemake.input.items()).get("label_table"),
    **snakemake.params.options,
)
