"""Shared test setup.

Tests live in ``tests/unit/<subpackage>/`` (one folder per package of ``sxtflow``; tests of
the top-level modules in ``tests/unit/``) and ``tests/workflow/`` (Snakemake end to end).
Their helpers (``_cells``, ``_snakemake``, ``_cfb``, ``_annotation_project``) and data
(``tests/data/``) stay here, importable from every folder.
"""

import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers, from any test folder


@pytest.fixture(autouse=True)
def _sxtflow_logger_restored():
    """The CLI (``sxtflow.cli.main``) points the ``sxtflow`` logger at stderr and stops its
    propagation; restore it after each test so later tests' ``caplog`` sees its lines and no
    handler writes to a stream pytest has closed."""
    log = logging.getLogger("sxtflow")
    saved = (log.handlers[:], log.level, log.propagate)
    yield
    log.handlers[:], log.level, log.propagate = saved
