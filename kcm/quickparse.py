"""A second reader of the command line, for speed: argparse (with ``re``, ``gettext``
and ``shutil``) costs more CPU than a one-shot ``kcm describe`` itself.

The options are defined once, by calls written for argparse (``add_argument``,
``add_mutually_exclusive_group``); an ``OptionTable`` records those calls, and
``parse`` reads the usual command lines with them: long options as ``--name=value``
or ``--name value``, flags, ``-o value``. Anything else (help, abbreviations, a value
that does not convert or is not among the choices, a missing required option, two
options of one exclusive group, positionals) returns None, and argparse, given the
same definitions, then parses or reports it exactly as before.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


class Spec:
    """One recorded ``add_argument`` call (options only)."""

    __slots__ = ("choices", "default", "dest", "flag", "group", "required", "type")

    def __init__(self, flags: tuple[str, ...], group: int | None, action: str | None = None,
                 dest: str | None = None, default: object = None,
                 type: Callable[[str], object] | None = None,
                 choices: Sequence[str] | None = None, required: bool = False,
                 **_ignored: object):
        long = next((flag for flag in flags if flag.startswith("--")), flags[0])
        self.dest = dest or long.lstrip("-").replace("-", "_")
        self.flag = action == "store_true"
        self.default = False if self.flag and default is None else default
        self.type = type
        self.choices = choices
        self.required = required
        self.group = group


class OptionTable:
    """Records a command's ``add_argument`` calls, the way argparse receives them."""

    def __init__(self) -> None:
        self.by_flag: dict[str, Spec] = {}
        self.specs: list[Spec] = []
        self.required_groups: list[int] = []
        self._groups = 0
        self.positional = False

    def add_argument(self, *flags: str, _group: int | None = None, **options: object) -> None:
        if not flags[0].startswith("-"):
            self.positional = True
            return
        spec = Spec(flags, _group, **options)  # type: ignore[arg-type]
        self.specs.append(spec)
        for flag in flags:
            self.by_flag[flag] = spec

    def add_mutually_exclusive_group(self, required: bool = False) -> _Group:
        self._groups += 1
        if required:
            self.required_groups.append(self._groups)
        return _Group(self, self._groups)


class _Group:
    def __init__(self, table: OptionTable, number: int):
        self.table, self.number = table, number

    def add_argument(self, *flags: str, **options: object) -> None:
        self.table.add_argument(*flags, _group=self.number, **options)


def parse(table: OptionTable, words: Sequence[str]) -> dict[str, object] | None:
    """The values argparse would give for ``words``, or None to let argparse decide."""
    if table.positional:
        return None
    values: dict[str, object] = {}
    groups_seen: dict[int, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        name, equals, value = word.partition("=") if word.startswith("--") else (word, "", "")
        spec = table.by_flag.get(name)
        if spec is None:
            return None
        if spec.flag:
            if equals:
                return None
            values[spec.dest] = True
        else:
            if not equals:
                if index >= len(words) or words[index].startswith("-"):
                    return None
                value = words[index]
                index += 1
            converted = _convert(spec, value)
            if converted is _INVALID:
                return None
            values[spec.dest] = converted
        if spec.group is not None:
            if groups_seen.get(spec.group, spec.dest) != spec.dest:
                return None
            groups_seen[spec.group] = spec.dest
    if any(group not in groups_seen for group in table.required_groups):
        return None
    for spec in table.specs:
        if spec.dest in values:
            continue
        if spec.required:
            return None
        default = spec.default
        if isinstance(default, str) and spec.type is not None:
            default = _convert(spec, default)
            if default is _INVALID:
                return None
        values[spec.dest] = default
    return values


_INVALID = object()


def _convert(spec: Spec, text: str) -> object:
    try:
        value = spec.type(text) if spec.type else text
    except Exception:  # argparse reports it, with its own wording
        return _INVALID
    if spec.choices is not None and value not in spec.choices:
        return _INVALID
    return value
