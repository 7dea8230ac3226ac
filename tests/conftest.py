"""Shared test setup."""

import logging

import pytest


@pytest.fixture(autouse=True)
def _sxtflow_logger_restored():
    """The CLI (``sxtflow.cli.main``) points the ``sxtflow`` logger at stderr and stops its
    propagation; restore it after each test so later tests' ``caplog`` sees its lines and no
    handler writes to a stream pytest has closed."""
    log = logging.getLogger("sxtflow")
    saved = (log.handlers[:], log.level, log.propagate)
    yield
    log.handlers[:], log.level, log.propagate = saved
