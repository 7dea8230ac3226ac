"""Make the sxtflow library in ``src/`` importable from rule scripts.

Snakemake puts this directory on ``sys.path`` of every script it runs, so ``import _paths``
works locally, on cluster nodes and inside per-rule conda envs, which then need only the
third-party packages listed in ``envs/*.yaml``.

It also skips the garbage collector's passes over every object at the interpreter's exit
(``gc.freeze`` when the script ends): with scikit-learn, scipy.stats or matplotlib imported
they cost a job 0.1-0.4 CPU-s, ≈ 27 CPU-s over the demo's 91 jobs (docs/performance.md).
"""

import atexit
import gc
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
if SRC in sys.path:
    sys.path.remove(SRC)
sys.path.insert(0, SRC)  # this checkout's library wins over any installed sxtflow

# atexit handlers run before the interpreter's teardown; frozen objects are left to the OS
atexit.register(gc.freeze)
