"""YAML text for JSON-like documents (dicts, lists, tuples, strings, numbers, booleans,
None), without importing PyYAML: its import alone costs ``kcm manifests`` twice a bare
Python start. Block style as ``yaml.safe_dump`` and kubectl write it (two-space
mappings, sequences not indented under their key). A string is left plain only when no
YAML 1.1 or 1.2 reader can take it for anything else (letters, digits, ``._/-``,
starting with a letter, ``_`` or ``/``, and not a boolean or null word); every other
string is double-quoted, with escapes for quotes, backslashes and what is not printable.
"""

from __future__ import annotations

_PLAIN_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_/")
_PLAIN = _PLAIN_FIRST | frozenset("0123456789.-")
_RESERVED = frozenset(("y", "n", "yes", "no", "true", "false", "on", "off", "null"))
"""Words a YAML 1.1 reader (PyYAML, go-yaml v2) resolves to a boolean or null, any case."""
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def dumps(value: object, sort_keys: bool = False) -> str:
    """``value`` as a YAML document ending in a newline; ``sort_keys`` orders mappings."""
    lines: list[str] = []
    if _is_block(value):
        _block(value, 0, lines, sort_keys)
    else:
        lines.append(_scalar(value))
    return "\n".join(lines) + "\n"


def dumps_all(documents: list) -> str:
    """Several documents, each after a ``---`` line (mappings in their own order)."""
    return "".join("---\n" + dumps(document) for document in documents)


def _is_block(value: object) -> bool:
    return isinstance(value, dict | list | tuple) and len(value) > 0


def _block(value: dict | list | tuple, indent: int, lines: list[str], sort_keys: bool) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        items = sorted(value.items()) if sort_keys else value.items()
        for key, item in items:
            if isinstance(item, dict) and item:
                lines.append(f"{pad}{_scalar(key)}:")
                _block(item, indent + 2, lines, sort_keys)
            elif _is_block(item):
                lines.append(f"{pad}{_scalar(key)}:")
                _block(item, indent, lines, sort_keys)
            else:
                lines.append(f"{pad}{_scalar(key)}: {_scalar(item)}")
        return
    for item in value:
        if _is_block(item):
            first = len(lines)
            _block(item, indent + 2, lines, sort_keys)
            lines[first] = f"{pad}- {lines[first][indent + 2:]}"
        else:
            lines.append(f"{pad}- {_scalar(item)}")


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return value if _plain(value) else _quoted(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        text = float.__repr__(value)
        # YAML 1.1 reads a float only with a dot: 1e+16 would be a string.
        return text if "." in text else text.replace("e", ".0e", 1)
    if isinstance(value, dict | list | tuple):
        return "{}" if isinstance(value, dict) else "[]"
    raise TypeError(f"Object of type {type(value).__name__} is not YAML serializable")


def _plain(text: str) -> bool:
    return (text[:1] in _PLAIN_FIRST and all(c in _PLAIN for c in text)
            and text.lower() not in _RESERVED)


def _quoted(text: str) -> str:
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    parts = ['"']
    for char in text:
        if char in '"\\':
            parts.append("\\" + char)
        elif char.isprintable():
            parts.append(char)
        elif char in _ESCAPES:
            parts.append(_ESCAPES[char])
        else:
            code = ord(char)
            parts.append(f"\\x{code:02x}" if code < 0x100 else
                         f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    parts.append('"')
    return "".join(parts)
