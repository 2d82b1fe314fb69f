#!/usr/bin/env python3
"""Generate docs/cli.md (at 100 columns) and kcm/helptext.py (the help kcm prints, at 80
columns) from kcm's argument parser. ``--check`` exits 1 when either is stale."""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kcm import cmk  # noqa: E402
from kcm.cli import COMMANDS, build_parser  # noqa: E402

DOC = ROOT / "docs" / "cli.md"
HELP_MODULE = ROOT / "kcm" / "helptext.py"


def parsers(columns: int) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """kcm's parser and its subcommands' parsers, formatting for ``columns``."""
    os.environ["COLUMNS"] = str(columns)
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, subparsers.choices


def render_help_module() -> str:
    parser, commands = parsers(80)
    lines = ['"""What ``kcm --help`` and ``kcm COMMAND --help`` print: generated from kcm\'s '
             "argument", "parser (80 columns) by scripts/gen-cli-doc.py, which a test runs "
             "to check it is", "current. Printed as it is, without importing or building "
             'argparse (start-up cost)."""', "", "HELP = {"]
    for name, text in (("", parser.format_help()),
                       *((name, commands[name].format_help()) for name in COMMANDS)):
        quoted = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        lines.append(f'    "{name}": """\\\n{quoted}""",')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render() -> str:
    parser, choices = parsers(100)
    parts = ["# kcm command line\n",
             "Generated from the argument parser by `scripts/gen-cli-doc.py`; a test fails "
             "when it is stale. Errors are one `kcm: ...` line on stderr with exit status 1; "
             "usage errors exit 2; `kcm isolate` exits with its workload's status.\n",
             "```text", parser.format_help().rstrip(), "```\n"]
    for name in COMMANDS:
        parts += [f"## kcm {name}\n", "```text",
                  choices[name].format_help().rstrip(), "```\n"]
    parts += ["## cmk: CMK v1.4.1's command line\n",
              "`pip install` and `kcm install` put a `cmk` command next to `kcm`: workloads "
              "and scripts written for CMK run unchanged. It translates CMK's command line "
              "to kcm's (`kcm/cmk.py`) and runs it.\n", "```text", cmk.USAGE, "```\n",
              "Where it differs from CMK, and why:\n"]
    parts += [f"- {difference}" for difference in cmk.DIFFERENCES]
    return "\n".join(parts) + "\n"


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = 0
    for path, text in ((DOC, render()), (HELP_MODULE, render_help_module())):
        if not check:
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            print(f"{path} is stale: run scripts/gen-cli-doc.py", file=sys.stderr)
            stale = 1
    return stale


if __name__ == "__main__":
    sys.exit(main())
