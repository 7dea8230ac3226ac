"""Progress lines and rule-log error handling (sxtflow.progress)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from sxtflow.progress import log_to, progress

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_progress_logs_percentages():
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("sxtflow")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert list(progress(range(4), 4, "work", every_pct=50)) == [0, 1, 2, 3]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert [line.split()[1] for line in lines if line.startswith("work:")] == ["25%", "75%", "100%"]


def _script(tmp_path: Path, body: str) -> tuple[int, str]:
    """Run a rule-script-like program that logs to a file; return its status and the log."""
    log = tmp_path / "rule.log"
    code = f"from sxtflow.progress import log_to\nlog_to({str(log)!r})\n{body}"
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return done.returncode, log.read_text()


def test_rule_log_gets_one_line_for_bad_input(tmp_path):
    rc, text = _script(
        tmp_path, "from sxtflow.io import InputError\nraise InputError('a.mrc', 'truncated file')"
    )
    assert rc == 1
    assert text == "sxtflow: error: a.mrc: truncated file\n"


def test_rule_log_keeps_the_traceback_of_a_bug(tmp_path):
    rc, text = _script(tmp_path, "def f():\n    return 1 / 0\nf()")
    assert rc == 1
    assert "Traceback" in text and "ZeroDivisionError" in text


def test_log_to_without_a_path_leaves_the_excepthook(tmp_path):
    hook = sys.excepthook
    try:
        log_to(None)
        assert sys.excepthook is hook
    finally:
        logging.getLogger("sxtflow").propagate = True
