"""Test collection from the repository root (``make test``: tests/ and the doctests of src/).

The deprecated alias modules of ``sxtflow`` (``sxtflow.reconstruct`` …, kept for one release)
warn when imported; the doctest collector would import them, so they are not collected
(``tests/unit/test_layout.py`` imports them and expects the warning).
"""

from pathlib import Path

collect_ignore = [
    str(p.relative_to(Path(__file__).parent))
    for p in sorted(Path(__file__).parent.joinpath("src", "sxtflow").glob("*.py"))
    if p.read_text(encoding="utf-8").startswith('"""Deprecated alias')
]
