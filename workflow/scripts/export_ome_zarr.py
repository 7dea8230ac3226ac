"""Rule export_ome_zarr: tomogram, labels (+ annotation) and probabilities as OME-Zarr."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_export_ome_zarr

log_to(snakemake.log[0])
labels = {"segmentation": snakemake.input.labels}
if "annotation" in snakemake.input.keys():
    labels["annotation"] = snakemake.input.annotation
run_export_ome_zarr(
    snakemake.input.tomogram,
    snakemake.output[0],
    labels=labels,
    probabilities=snakemake.input.probabilities,
    label_table=dict(snakemake.input.items()).get("label_table"),
    **snakemake.params.options,
)
