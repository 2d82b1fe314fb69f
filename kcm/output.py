"""How commands print a document: ``-o table|json|yaml``, the same for every command.

``json`` is what scripts read (and the original KCM's and CMK's shapes); ``yaml`` the same
data for people who prefer it; ``table`` aligned columns for a terminal. A command whose
output is mostly read by people defaults to ``table`` on a terminal and ``json``
otherwise (a pipe, a log), so scripts see no change."""

from __future__ import annotations

import sys

from kcm import jsontext, yamltext


def chosen(fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    return "table" if sys.stdout.isatty() else "json"


def emit(document: object, fmt: str | None, rows=None, indent: int | None = 2) -> None:
    """Print ``document``; ``rows`` (document -> list of rows, the first the header) is
    the table form, else the document's keys and values as two columns."""
    fmt = chosen(fmt)
    if fmt == "json":
        text = jsontext.dumps(document, indent)
    elif fmt == "yaml":
        text = yamltext.dumps(document, sort_keys=True).rstrip("\n")
    else:
        text = format_table(rows(document) if rows else key_values(document))
    print(text, flush=True)


def key_values(document: object, prefix: str = "") -> list[tuple[str, ...]]:
    """A document as KEY/VALUE rows: nested keys joined with dots, lists of scalars
    joined with commas, lists of objects one row each."""
    found: list[tuple[str, ...]] = [] if prefix else [("KEY", "VALUE")]
    if isinstance(document, dict):
        for key in sorted(document):
            found += key_values(document[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(document, list) and any(isinstance(item, dict | list) for item in document):
        for index, item in enumerate(document):
            found += key_values(item, f"{prefix}[{index}]")
    elif isinstance(document, list):
        found.append((prefix, ", ".join(map(str, document)) or "-"))
    else:
        found.append((prefix, "-" if document is None else str(document).lower()
                      if isinstance(document, bool) else str(document)))
    return found


def format_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                               ).rstrip() for row in rows)
