# sxtflow: soft X-ray tomograms of whole cells -> organelles, surfaces and statistics.
# The science lives in the importable package src/sxtflow; rules call thin scripts.
from pathlib import Path

from snakemake.utils import min_version

min_version("8.20")


# The demo's configuration when run in this repository (or in any working directory with a
# config/config.yaml); elsewhere, `--configfile` or `--config samples=...` is enough: every
# other key has a default (src/sxtflow/options.py, listed in config/README.md).
if Path("config/config.yaml").exists():

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/reconstruct.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/analyse.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/export.smk"


rule all:
    default_target: True
    input:
        get_final_output,
