"""Making writes survive a crash: the file-system steps under every write kcm makes
(write a file, fsync it, rename it over its target, fsync a directory, one syncfs for
many files). ``kcm.state`` composes them into its atomic writes.

Crash points: each step passes a named point (``opened``, ``written``, ``synced``,
``renamed``, ``dir-synced``). With ``KCM_CRASH_AT=POINT:N`` (tests only) the process
kills itself with SIGKILL at the Nth pass of POINT, so a test can stop kcm between any
two steps of any write and check what a crash leaves behind.
"""

import os

from kcm import env

_crash = env.crash_at()
_passes = 0
SIGKILL = 9  # the signal module imports enum: milliseconds on isolate's path


def crash_point(name: str) -> None:
    global _passes
    if _crash is not None and _crash[0] == name:
        _passes += 1
        if _passes == _crash[1]:
            os.kill(os.getpid(), SIGKILL)


def write_file(path: str, text: str, sync: bool = True) -> None:
    """Create or truncate ``path`` (never through a symlink), write ``text``, fsync
    (unless ``sync`` is False: a file whose loss a crash may cost)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        crash_point("opened")
        data = text.encode("ascii")
        while data:
            data = data[os.write(fd, data):]
        crash_point("written")
        if sync:
            os.fsync(fd)
            crash_point("synced")
    finally:
        os.close(fd)


def rename(source: str, target: str, sync_dir: bool = True) -> None:
    """Rename ``source`` over ``target``; with ``sync_dir``, make it durable (fsync of
    the target's directory, which also makes earlier renames in it durable)."""
    os.rename(source, target)
    crash_point("renamed")
    if sync_dir:
        fsync_path(os.path.dirname(target) or ".")


def sync_filesystem(path: str, files: list[str]) -> None:
    """Make ``files`` (on the file system of ``path``) durable with one ``syncfs(2)``,
    whatever their number; without syncfs, one fsync each."""
    import ctypes

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if getattr(libc, "syncfs", None) is not None and libc.syncfs(fd) == 0:
            crash_point("synced")
            return
    finally:
        os.close(fd)
    for name in files:
        fsync_path(name)


def fsync_path(path: str) -> None:
    """fsync a file or a directory by path (a directory, to make renames in it durable)."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if os.path.isdir(path) else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    crash_point("dir-synced" if flags & os.O_DIRECTORY else "synced")
