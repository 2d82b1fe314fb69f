"""Waking up when files change: inotify(7) through the C library (no dependency).

``kcm enforce --interval`` watches each CPU list directory, where ``tasks`` is replaced
by a rename (kcm) or rewritten in place (the original KCM and CMK), so it reacts to a
grant or a release within milliseconds instead of at the next interval."""

from __future__ import annotations

import ctypes
import os
import select

IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
CHANGES = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE


class Watcher:
    """Directories to watch; ``wait(seconds)`` is True when something changed."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._watched: set[str] = set()

    def watch(self, directories: list[str]) -> None:
        """Add watches for directories not watched yet (ones that vanish drop out)."""
        for directory in directories:
            if directory not in self._watched and self._libc.inotify_add_watch(
                    self.fd, os.fsencode(directory), CHANGES) >= 0:
                self._watched.add(directory)

    def wait(self, seconds: float) -> bool:
        readable, _, _ = select.select([self.fd], [], [], max(seconds, 0))
        if not readable:
            return False
        try:
            while os.read(self.fd, 1 << 16):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        os.close(self.fd)
