"""The deprecation warning of the modules kept for one release as aliases of their new homes."""

import warnings


def moved(old: str, new: str) -> None:
    """Warn, once per importing module, that ``old`` moved to ``new``.

    Called at the top of an alias module; the warning points at the line importing it (the
    import machinery's frames are skipped).
    """
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; import from {new}",
        DeprecationWarning,
        stacklevel=3,
    )
