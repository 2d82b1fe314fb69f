"""The Linux CPU list format (``0-2,8-10``) to and from sets of CPU ids; pure."""

from __future__ import annotations

from kcm.errors import CpuListError

TYPE_CHECKING = False  # collections.abc costs ~2 ms on the isolate start-up path
if TYPE_CHECKING:
    from collections.abc import Iterable

CpuSet = frozenset[int]
MAX_CPU = 16383
"""The largest CPU id accepted (Linux's NR_CPUS tops out at 8192 on common builds):
a bound, so that ``0-999999999`` is an error rather than a billion-element set."""


def parse_cpulist(text: str) -> CpuSet:
    """Parse a CPU list strictly; surrounding white space (sysfs newlines) is allowed.

    ``""`` is the empty set. Reversed ranges, empty items, signs and anything
    that is not a decimal id raise CpuListError naming the offending text.
    """
    body = text.strip()
    if not body:
        return frozenset()
    cpus: set[int] = set()
    for item in body.split(","):
        low_text, dash, high_text = item.partition("-")
        low = _cpu_id(low_text, item, text)
        if not dash:
            cpus.add(low)
            continue
        high = _cpu_id(high_text, item, text)
        if high < low:
            raise CpuListError(f"invalid CPU list {text!r}: range {item!r} is reversed")
        cpus.update(range(low, high + 1))
    return frozenset(cpus)


def _cpu_id(digits: str, item: str, text: str) -> int:
    if not digits or not digits.isascii() or not digits.isdigit():
        raise CpuListError(f"invalid CPU list {text!r}: bad item {item!r}")
    if len(digits) > 5 or int(digits) > MAX_CPU:
        raise CpuListError(f"invalid CPU list {text!r}: CPU {digits} is beyond {MAX_CPU}")
    return int(digits)


def format_cpulist(cpus: Iterable[int]) -> str:
    """The canonical CPU list, as the kernel prints it: sorted, runs collapsed (``0-2,4-5,8``)."""
    ordered = sorted(set(cpus))
    parts: list[str] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        if end > start:
            parts.append(f"{ordered[start]}-{ordered[end]}")
        else:
            parts.append(str(ordered[start]))
        start = end + 1
    return ",".join(parts)


def format_mask(cpus: Iterable[int]) -> str:
    """The hexadecimal affinity mask of a CPU set, as taskset prints it (``0xf0``)."""
    mask = 0
    for cpu in cpus:
        mask |= 1 << cpu
    return hex(mask)
