"""Rule reconstruct: raw projections (or a tomogram) to a calibrated LAC tomogram in 1/um."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_reconstruct

log_to(snakemake.log[0])
run_reconstruct(
    snakemake.input.raw,
    snakemake.output.tomogram,
    snakemake.output.qc,
    snakemake.output.preview,
    kind=snakemake.params.kind,
    voxel_nm=snakemake.params.voxel_nm,
    **snakemake.params.options,
)
