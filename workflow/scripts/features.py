"""Rule features: multi-scale voxel features, block-wise, into a zarr store."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_features

log_to(snakemake.log[0])
run_features(snakemake.input.tomogram, snakemake.output.features, **snakemake.params.options)
