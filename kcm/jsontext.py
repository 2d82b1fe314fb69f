"""JSON text as ``json.dumps(value, sort_keys=True, indent=...)`` writes it, without
importing ``json``: its decoder pulls in ``re`` (with ``enum``), which costs a one-shot
``kcm describe`` or ``kcm reconcile`` more CPU than its own work. Strings are quoted by
the C function ``json`` itself uses. Dicts, lists, tuples, strings, numbers, booleans
and None, as the commands' documents are; anything else is a TypeError, as in ``json``.
"""

from _json import encode_basestring_ascii as _quote


def dumps(value: object, indent: int | None = None) -> str:
    """``json.dumps(value, sort_keys=True, indent=indent)``, byte for byte."""
    parts: list[str] = []
    _write(value, parts, None if indent is None else " " * indent, 0)
    return "".join(parts)


def _scalar(value: object) -> str | None:
    if isinstance(value, str):
        return _quote(value)
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
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    return None


def _key(key: object) -> str:
    if isinstance(key, str):
        return key
    text = _scalar(key)
    if text is None:
        raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
    return text


def _write(value: object, parts: list[str], indent: str | None, level: int) -> None:
    text = _scalar(value)
    if text is not None:
        parts.append(text)
        return
    if isinstance(value, dict):
        items = sorted(value.items())
        opening, closing = "{", "}"
    elif isinstance(value, list | tuple):
        items = list(value)
        opening, closing = "[", "]"
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    if not items:
        parts.append(opening + closing)
        return
    if indent is None:
        separator, inner, outer = ", ", "", ""
    else:
        inner = "\n" + indent * (level + 1)
        separator, outer = "," + inner, "\n" + indent * level
    parts.append(opening + inner)
    for index, item in enumerate(items):
        if index:
            parts.append(separator)
        if opening == "{":
            key, item = item
            parts.append(_quote(_key(key)) + ": ")
        _write(item, parts, indent, level + 1)
    parts.append(outer + closing)
