"""pytest (rootdir): modules of optional extras are not collected for doctests without them."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("napari") else ["src/sxtflow/napari/*"]


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def use_leak_safe_log_records():
    """Override napari's pytest plugin fixture of this name: for the whole session it turns log
    arguments that are not int/float into str, so ``%.4g`` of a numpy float32 in our progress
    logs would fail in every other test. napari's tests need it; ours keep standard records."""
    yield
