"""Rule compare: per-condition summaries, tests and plots with the cell as the unit."""

import _paths  # noqa: F401  (puts src/ on sys.path)

from sxtflow.progress import log_to
from sxtflow.stages import run_compare

log_to(snakemake.log[0])
out = dict(snakemake.output.items())  # fractions/chromatin only when the classes allow them
run_compare(
    snakemake.input.cells,
    snakemake.input.organelles,
    snakemake.params.samples,
    out_cells=out["cells"],
    out_objects=out["objects"],
    out_summary=out["summary"],
    out_tests=out["tests"],
    out_measures=out["measures"],
    out_fractions=out.get("fractions"),
    out_lac=out["lac"],
    chromatin_paths=dict(snakemake.input.items()).get("chromatin", ()),
    out_chromatin=out.get("chromatin"),
    classes=snakemake.params.classes,
    seed=snakemake.params.seed,
    **snakemake.params.options,
)
