"""Interrupt affinities under the host procfs: ``/proc/irq/N/smp_affinity_list`` and
``/proc/irq/default_smp_affinity`` (the affinity new IRQs get). The only module that
writes them. An IRQ the kernel will not move (a managed IRQ: the write fails) is
reported as unmovable."""

from __future__ import annotations

import os

from kcm.cpuset import CpuSet, format_cpulist, parse_cpulist
from kcm.errors import CpuListError
from kcm.kernfs import VANISHED, write_value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kcm.state import ConfigDir

DEFAULT = "default"
"""The key of ``default_smp_affinity`` among the IRQ numbers."""


def read_affinities(proc_root: str) -> dict[str, CpuSet]:
    """Every IRQ's affinity by number (and ``default``); IRQs that cannot be read are
    left out."""
    base = os.path.join(proc_root, "irq")
    found: dict[str, CpuSet] = {}
    try:
        names = os.listdir(base)
    except OSError:
        return found
    for name in names:
        if name.isdigit():
            text = _read(os.path.join(base, name, "smp_affinity_list"))
            cpus = _parse(text, parse_cpulist) if text is not None else None
        elif name == "default_smp_affinity":
            text = _read(os.path.join(base, name))
            cpus = _parse(text, parse_mask) if text is not None else None
            name = DEFAULT
        else:
            continue
        if cpus:
            found[name] = cpus
    return found


def write_affinity(proc_root: str, irq: str, cpus: CpuSet) -> str | None:
    """Set an IRQ's affinity; None on success, else why not. Never an empty set."""
    if not cpus:
        return "refusing to leave an IRQ without a CPU"
    if irq == DEFAULT:
        path, text = os.path.join(proc_root, "irq", "default_smp_affinity"), format_mask(cpus)
    else:
        path = os.path.join(proc_root, "irq", irq, "smp_affinity_list")
        text = format_cpulist(cpus)
    problem = write_value(path, text)
    return f"{path} is gone" if problem == VANISHED else problem


def restore_recorded(conf: ConfigDir, proc_root: str) -> list[str]:
    """Give every IRQ kcm moved its recorded affinity back, and forget the record
    (``kcm uninstall``); what was restored."""
    with conf.locked():
        record = conf.load_irq_record()
        restored = [irq for irq, cpus in sorted(record.items())
                    if write_affinity(proc_root, irq, cpus) is None]
        conf.save_irq_record({})
    return [f"IRQ {irq} affinity" for irq in restored]


def parse_mask(text: str) -> CpuSet:
    """A kernel hexadecimal CPU mask (``ff,ffffffff``)."""
    digits = text.strip().replace(",", "")
    if not digits or len(digits) > 4096 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise CpuListError(f"not a CPU mask: {text.strip()[:40]!r}")
    value = int(digits, 16)
    return frozenset(cpu for cpu in range(value.bit_length()) if value >> cpu & 1)


def format_mask(cpus: CpuSet) -> str:
    """A mask as the kernel reads it: hexadecimal, no ``0x``."""
    return format(sum(1 << cpu for cpu in cpus), "x")


def _parse(text: str, parse) -> CpuSet | None:
    try:
        return parse(text)
    except CpuListError:
        return None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read(1 << 16)
    except OSError:
        return None
