"""The suite's own rules: a test signals only processes it started, by PID."""

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
BY_NAME = re.compile(r"\bpkill\b|\bkillall\b|pgrep[^\n|]*-f")


def test_no_test_searches_or_signals_processes_by_name():
    offenders = [f"{path.relative_to(TESTS)}:{number}"
                 for path in sorted(TESTS.rglob("*.py")) if path.name != "test_hygiene.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if BY_NAME.search(line)]
    assert not offenders, f"tests that find or signal processes by name: {offenders}"
