"""Rule evaluation_table: one table of every sample's evaluation."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import stack_sample_tables

log_to(snakemake.log[0])
stack_sample_tables(list(snakemake.input), snakemake.output[0])
