"""Make the sxtflow library in ``src/`` importable from rule scripts.

Snakemake puts this directory on ``sys.path`` of every script it runs, so ``import _paths``
works locally, on cluster nodes and inside per-rule conda envs, which then need only the
third-party packages listed in ``envs/*.yaml``.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
if SRC in sys.path:
    sys.path.remove(SRC)
sys.path.insert(0, SRC)  # this checkout's library wins over any installed sxtflow
