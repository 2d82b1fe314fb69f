"""Writing one value into a kernel control file (cgroupfs ``cpuset.*``, ``/proc/irq``)."""

import errno
import os

VANISHED = "vanished"
"""What ``write_value`` says when the file (its cgroup, its IRQ) is gone."""


def write_value(path: str, text: str) -> str | None:
    """Write ``text`` in one ``write(2)``, as the kernel wants; None on success, else
    ``VANISHED`` or why not. Never follows a symlink."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return VANISHED
    except OSError as error:
        return f"cannot open {path}: {error.strerror}"
    try:
        os.write(fd, text.encode())
        return None
    except OSError as error:
        if error.errno in (errno.ENODEV, errno.ENOENT):
            return VANISHED
        return f"cannot write {text!r} to {path}: {error.strerror}"
    finally:
        os.close(fd)
