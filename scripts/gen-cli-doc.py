#!/usr/bin/env python3
"""Generate docs/cli.md from kcm's argument parser. ``--check`` exits 1 when stale."""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kcm import cmk  # noqa: E402
from kcm.cli import COMMANDS, build_parser  # noqa: E402

DOC = ROOT / "docs" / "cli.md"


def render() -> str:
    os.environ["COLUMNS"] = "100"
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = ["# kcm command line\n",
             "Generated from the argument parser by `scripts/gen-cli-doc.py`; a test fails "
             "when it is stale. Errors are one `kcm: ...` line on stderr with exit status 1; "
             "usage errors exit 2; `kcm isolate` exits with its workload's status.\n",
             "```text", parser.format_help().rstrip(), "```\n"]
    for name in COMMANDS:
        parts += [f"## kcm {name}\n", "```text",
                  subparsers.choices[name].format_help().rstrip(), "```\n"]
    parts += ["## cmk: CMK v1.4.1's command line\n",
              "`pip install` and `kcm install` put a `cmk` command next to `kcm`: workloads "
              "and scripts written for CMK run unchanged. It translates CMK's command line "
              "to kcm's (`kcm/cmk.py`) and runs it.\n", "```text", cmk.USAGE, "```\n",
              "Where it differs from CMK, and why:\n"]
    parts += [f"- {difference}" for difference in cmk.DIFFERENCES]
    return "\n".join(parts) + "\n"


def main() -> int:
    check = "--check" in sys.argv[1:]
    text = render()
    if check:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is stale: run scripts/gen-cli-doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
