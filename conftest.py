"""pytest (rootdir): modules of optional extras are not collected for doctests without them."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("napari") else ["src/sxtflow/napari/*"]
