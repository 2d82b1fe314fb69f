"""The configuration directory: the only code that reads or writes its files.

Layout (compatible with the operator manual)::

    <conf-dir>/lock                              flock(2) target
    <conf-dir>/pools/<pool>/exclusive            "1" or "0"
    <conf-dir>/pools/<pool>/<cpulist>/tasks      comma-separated host PIDs
    <conf-dir>/pools/<pool>/<cpulist>/task-info  kcm's own: one line per task,
                                                 "PID START CHILD CHILD_START"

``task-info`` lets reconcile tell a reused PID from the original (start times from
``/proc/PID/stat``) and keep a CPU list held while the workload outlives a killed
``kcm isolate``. It is written before ``tasks`` when a task is added and after it
when one is removed, so it always covers every PID in ``tasks``; a PID without a
line (a directory written by hand) is judged by existence alone.

Every write goes to a ``.kcm-tmp-*`` file, is fsynced, renamed into place and the
directory fsynced. Readers skip ``.kcm-tmp-*`` debris a crash may leave; reconcile
removes it. Anything else unexpected (symlinks, unknown files, bad names or
contents, overlapping CPU lists) is a ConfigError naming the path.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from kcm import log
from kcm.cpuset import CpuSet, format_cpulist, parse_cpulist
from kcm.durable import fsync_path, write_synced
from kcm.errors import ConfigError, CpuListError, LockTimeout

TYPE_CHECKING = False  # collections.abc costs ~3 ms on the isolate start-up path
if TYPE_CHECKING:
    from collections.abc import Iterable

DEFAULT_CONF_DIR = "/etc/kcm"
DEFAULT_LOCK_TIMEOUT = 30.0
TMP_PREFIX = ".kcm-tmp-"
_POOL_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_MAX_FILE = 1 << 20


# Plain classes rather than dataclasses or namedtuples: this module is on the start-up
# path of every workload, where importing dataclasses or collections costs milliseconds.
class Task:
    """A ``kcm isolate`` process holding a CPU list: its host PID and start time
    (clock ticks after boot), and those of the workload it runs (None if unknown)."""

    __slots__ = ("child", "child_start", "pid", "start")

    def __init__(self, pid: int, start: int | None = None, child: int | None = None,
                 child_start: int | None = None):
        self.pid = pid
        self.start = start
        self.child = child
        self.child_start = child_start

    def _key(self) -> tuple:
        return (self.pid, self.start, self.child, self.child_start)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Task({}, {}, {}, {})".format(*self._key())


class CpuList:
    """One CPU list of a pool: ``name`` is its directory name as on disk."""

    __slots__ = ("cpus", "name", "tasks")

    def __init__(self, name: str, cpus: CpuSet, tasks: list[Task] | None = None):
        self.name = name
        self.cpus = cpus
        self.tasks = tasks if tasks is not None else []

    def __repr__(self) -> str:
        return f"CpuList({self.name!r}, tasks={self.tasks!r})"


class Pool:
    __slots__ = ("cpu_lists", "exclusive", "name")

    def __init__(self, name: str, exclusive: bool, cpu_lists: dict[str, CpuList] | None = None):
        self.name = name
        self.exclusive = exclusive
        self.cpu_lists = cpu_lists if cpu_lists is not None else {}


class Config:
    __slots__ = ("path", "pools")

    def __init__(self, path: str, pools: dict[str, Pool]):
        self.path = path
        self.pools = pools

    def pool(self, name: str) -> Pool:
        try:
            return self.pools[name]
        except KeyError:
            known = ", ".join(sorted(self.pools)) or "none"
            raise ConfigError(f"unknown pool {name!r} in {self.path} (pools: {known})") from None


def valid_pool_name(name: str) -> bool:
    """Letters, digits, ``_.-``; starting with a letter or digit; at most 63 characters."""
    return 0 < len(name) <= 63 and name[0].isalnum() and set(name) <= _POOL_NAME_CHARS


def conf_dir_from(value: str | None) -> str:
    return value or os.environ.get("KCM_CONF_DIR") or DEFAULT_CONF_DIR


def lock_timeout() -> float:
    text = os.environ.get("KCM_LOCK_TIMEOUT", "")
    if not text:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"KCM_LOCK_TIMEOUT must be a number of seconds, not {text!r}") from None
    if value < 0:
        raise ConfigError(f"KCM_LOCK_TIMEOUT must not be negative ({text})")
    return value


class ConfigDir:
    """One configuration directory on disk."""

    def __init__(self, path: str):
        self.path = path
        self.last_lock_wait = 0.0

    def _join(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    # -- locking ---------------------------------------------------------------

    def locked(self, shared: bool = False, timeout: float | None = None) -> _Lock:
        """``with conf.locked():`` holds the directory's flock, waiting at most
        ``timeout`` (default KCM_LOCK_TIMEOUT)."""
        return _Lock(self, shared, timeout)

    def _acquire(self, fd: int, shared: bool, limit: float, lock_path: str) -> None:
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        started = time.monotonic()
        pause = 0.0005
        while True:
            try:
                fcntl.flock(fd, mode)
                self.last_lock_wait = time.monotonic() - started
                return
            except BlockingIOError:
                pass
            except OSError as error:
                raise ConfigError(f"cannot lock {lock_path}: {error.strerror}") from None
            waited = time.monotonic() - started
            if waited >= limit:
                raise LockTimeout(
                    f"timed out after {limit:g}s waiting for the lock {lock_path} "
                    "(KCM_LOCK_TIMEOUT); another kcm process holds it"
                )
            time.sleep(min(pause, limit - waited))
            pause = min(pause * 2, 0.02)

    def _check_root(self) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            raise ConfigError(
                f"configuration directory {self.path} does not exist (run kcm init)"
            ) from None
        except OSError as error:
            raise ConfigError(f"cannot access {self.path}: {error.strerror}") from None
        if stat.S_ISLNK(info.st_mode):
            raise ConfigError(f"{self.path} is a symlink; kcm does not follow symlinks")
        if not stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{self.path} is not a directory")

    # -- reading -----------------------------------------------------------------

    def load(self, check_overlap: bool = True) -> Config:
        """Read and validate the whole directory (call under the lock).

        ``check_overlap=False`` leaves CPU lists shared between pools to the caller
        (the node report shows them as a failed check instead of failing)."""
        self._check_root()
        entries = _entries(self.path)
        for name, kind in entries.items():
            if (name == "lock" and kind == "file") or (name == "pools" and kind == "dir"):
                continue
            raise ConfigError(f"unexpected {kind} {self._join(name)} in configuration directory")
        if "pools" not in entries:
            raise ConfigError(f"{self.path} is not a kcm configuration directory (no pools/; "
                              "run kcm init)")
        pools_dir = self._join("pools")
        pools = {}
        for name, kind in sorted(_entries(pools_dir).items()):
            path = os.path.join(pools_dir, name)
            if kind != "dir" or not valid_pool_name(name):
                raise ConfigError(f"bad pool {kind} name {path}")
            pools[name] = _load_pool(path, name)
        config = Config(self.path, pools)
        if check_overlap:
            overlap = overlapping_cpus(config)
            if overlap:
                raise ConfigError(overlap[0])
        return config

    def load_cpu_lists(self, pool: str, names: list[str]) -> list[CpuList]:
        """Only the named CPU lists of a pool (call under the lock): for a writer that
        already knows what it holds, such as isolate giving its lists back."""
        self._check_root()
        lists = []
        for name in names:
            path = self._join("pools", pool, name)
            try:
                cpus = parse_cpulist(name)
            except CpuListError as error:
                raise ConfigError(f"bad CPU list directory {path}: {error}") from None
            lists.append(CpuList(name, cpus, _load_tasks(path)))
        return lists

    # -- writing -----------------------------------------------------------------

    def save_tasks(self, pool: str, cpu_list: CpuList, tasks: list[Task]) -> None:
        """Replace a CPU list's tasks on disk (call under the lock) and in ``cpu_list``.

        ``task-info`` always covers every PID of ``tasks``, even after a crash
        between the two writes.
        """
        directory = self._join("pools", pool, cpu_list.name)
        old_info = _format_info(cpu_list.tasks)
        merged = {task.pid: task for task in cpu_list.tasks}
        merged.update({task.pid: task for task in tasks})
        covering = _format_info(merged.values())
        final = _format_info(tasks)
        # One directory fsync, after the last rename, makes every rename durable.
        if covering != old_info:
            _atomic_write(os.path.join(directory, "task-info"), covering, sync_dir=False)
        _atomic_write(os.path.join(directory, "tasks"), _format_tasks(tasks),
                      sync_dir=final == covering)
        if final != covering:
            _atomic_write(os.path.join(directory, "task-info"), final)
        cpu_list.tasks = list(tasks)

    def remove_debris(self) -> list[str]:
        """Delete ``.kcm-tmp-*`` files left by crashed writers (call under the lock)."""
        import shutil

        removed = []
        for directory, dirs, files in os.walk(self.path):
            for name in files + dirs:
                if name.startswith(TMP_PREFIX):
                    path = os.path.join(directory, name)
                    if os.path.isdir(path) and not os.path.islink(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        _unlink_quietly(path)
                    removed.append(path)
            dirs[:] = [name for name in dirs if not name.startswith(TMP_PREFIX)]
        return removed

    def destroy(self) -> bool:
        """Remove the directory's contents and the directory (call without holding the
        lock: the lock file goes too). False when there was nothing. A mount point
        (a hostPath volume) stays, empty."""
        import shutil

        if not os.path.lexists(self.path):
            return False
        self._check_root()
        for name in os.listdir(self.path):
            path = self._join(name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        try:
            os.rmdir(self.path)
        except OSError as error:
            if error.errno not in (errno.EBUSY, errno.EACCES, errno.EPERM, errno.EROFS):
                raise ConfigError(f"cannot remove {self.path}: {error.strerror}") from None
        return True

    def create(self, pools: Iterable[tuple[str, bool, list[CpuSet]]]) -> bool:
        """Create the directory with these pools; False if it already holds exactly them.

        The pools are built in a temporary directory inside the target and renamed
        into place as a whole, so a failed or killed init leaves no half directory
        (the target itself may be a mount point, so it is never renamed).
        """
        import shutil

        wanted = {name: (exclusive, sorted(map(sorted, lists))) for name, exclusive, lists in pools}
        created = self._make_root()
        try:
            with self.locked():
                existing = self._existing_layout()
                if existing is not None:
                    if existing == wanted:
                        return False
                    raise ConfigError(
                        f"{self.path} is already initialised with different pools or CPU lists; "
                        "remove it first to re-initialise"
                    )
                self._build(wanted)
                return True
        except BaseException:
            if created:
                shutil.rmtree(self.path, ignore_errors=True)
            raise

    def _make_root(self) -> bool:
        try:
            os.mkdir(self.path, 0o755)
            return True
        except FileExistsError:
            self._check_root()
            return False
        except OSError as error:
            raise ConfigError(f"cannot create {self.path}: {error.strerror}") from None

    def _existing_layout(self) -> dict | None:
        entries = _entries(self.path)
        if "pools" in entries:
            config = self.load()
            return {
                name: (pool.exclusive, sorted(sorted(cl.cpus) for cl in pool.cpu_lists.values()))
                for name, pool in config.pools.items()
            }
        foreign = [name for name in entries if name != "lock"]
        if foreign:
            raise ConfigError(
                f"{self.path} is not empty and not a kcm configuration directory "
                f"(found {', '.join(sorted(foreign)[:3])})"
            )
        return None

    def _build(self, wanted: dict) -> None:
        import shutil

        staging = self._join(f"{TMP_PREFIX}init-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            root = os.path.join(staging, "pools")
            os.makedirs(root)
            for name, (exclusive, lists) in sorted(wanted.items()):
                pool_dir = os.path.join(root, name)
                os.mkdir(pool_dir)
                write_synced(os.path.join(pool_dir, "exclusive"), "1" if exclusive else "0")
                for cpus in lists:
                    list_dir = os.path.join(pool_dir, format_cpulist(cpus))
                    os.mkdir(list_dir)
                    write_synced(os.path.join(list_dir, "tasks"), "")
                    fsync_path(list_dir)
                fsync_path(pool_dir)
            fsync_path(root)
            os.rename(root, self._join("pools"))
            fsync_path(self.path)
        except OSError as error:
            raise ConfigError(f"cannot write {self.path}: {error.strerror}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)


class _Lock:
    """The flock on ``<conf-dir>/lock`` as a context manager (no contextlib import)."""

    def __init__(self, conf: ConfigDir, shared: bool, timeout: float | None):
        self.conf = conf
        self.shared = shared
        self.timeout = timeout
        self.fd = -1

    def __enter__(self) -> None:
        conf = self.conf
        conf._check_root()
        limit = lock_timeout() if self.timeout is None else self.timeout
        lock_path = conf._join("lock")
        self.fd = _open_lock(lock_path, self.shared)
        try:
            conf._acquire(self.fd, self.shared, limit, lock_path)
        except BaseException:
            os.close(self.fd)
            raise
        self.acquired = time.monotonic()

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)
        if log.enabled("DEBUG"):
            held = time.monotonic() - self.acquired
            log.debug(f"lock {self.conf.path}: waited {self.conf.last_lock_wait:.6f}s "
                      f"held {held:.6f}s")


def _open_lock(lock_path: str, shared: bool) -> int:
    """Open the lock file, creating it; a reader of a read-only directory (a read-only
    hostPath mount) opens an existing one read-only, which flock accepts."""
    try:
        return os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        if shared and error.errno in (errno.EROFS, errno.EACCES):
            try:
                return os.open(lock_path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                pass
        raise ConfigError(f"cannot open lock file {lock_path}: {error.strerror}") from None


def _load_pool(path: str, name: str) -> Pool:
    entries = _entries(path)
    if entries.get("exclusive") != "file":
        raise ConfigError(f"pool {name}: missing file {os.path.join(path, 'exclusive')}")
    flag = _read_text(os.path.join(path, "exclusive")).strip()
    if flag not in ("0", "1"):
        raise ConfigError(f"{os.path.join(path, 'exclusive')}: expected 0 or 1, found {flag!r}")
    pool = Pool(name, flag == "1")
    for entry, kind in sorted(entries.items()):
        if entry == "exclusive":
            continue
        entry_path = os.path.join(path, entry)
        if kind != "dir":
            raise ConfigError(f"unexpected {kind} {entry_path} in pool {name}")
        try:
            cpus = parse_cpulist(entry)
        except CpuListError as error:
            raise ConfigError(f"bad CPU list directory {entry_path}: {error}") from None
        if not cpus:
            raise ConfigError(f"bad CPU list directory {entry_path}: empty")
        pool.cpu_lists[entry] = CpuList(entry, cpus, _load_tasks(entry_path))
    return pool


def _load_tasks(path: str) -> list[Task]:
    entries = _entries(path)
    for entry, kind in entries.items():
        if entry in ("tasks", "task-info") and kind == "file":
            continue
        raise ConfigError(f"unexpected {kind} {os.path.join(path, entry)} in CPU list")
    tasks_path = os.path.join(path, "tasks")
    text = _read_text(tasks_path).strip() if "tasks" in entries else ""
    pids = [] if not text else [_pid(item, tasks_path) for item in text.split(",")]
    if len(set(pids)) != len(pids):
        raise ConfigError(f"{tasks_path}: a PID is listed twice ({text})")
    info = {}
    if "task-info" in entries:
        info = _parse_info(os.path.join(path, "task-info"))
    return [info.get(pid, Task(pid)) for pid in pids]


def _pid(text: str, path: str) -> int:
    value = text.strip()
    if not value.isascii() or not value.isdigit() or int(value) <= 0:
        raise ConfigError(f"{path}: {value!r} is not a PID")
    return int(value)


def _parse_info(path: str) -> dict[int, Task]:
    tasks = {}
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4 or not all(f == "-" or (f.isascii() and f.isdigit()) for f in fields):
            raise ConfigError(f"{path}:{number}: malformed task line {line[:60]!r}")
        values = [None if f == "-" else int(f) for f in fields]
        if values[0] is None:
            raise ConfigError(f"{path}:{number}: task line without a PID")
        tasks[values[0]] = Task(*values)
    return tasks


def _format_tasks(tasks: Iterable[Task]) -> str:
    return ",".join(str(task.pid) for task in tasks)


def _format_info(tasks: Iterable[Task]) -> str:
    def field_text(value: int | None) -> str:
        return "-" if value is None else str(value)

    return "".join(
        " ".join(map(field_text, (t.pid, t.start, t.child, t.child_start))) + "\n"
        for t in sorted(tasks, key=lambda t: t.pid)
    )


def overlapping_cpus(config: Config) -> list[str]:
    """One message per CPU that is in more than one CPU list."""
    owner: dict[int, str] = {}
    problems = []
    for pool in config.pools.values():
        for cpu_list in pool.cpu_lists.values():
            where = os.path.join(config.path, "pools", pool.name, cpu_list.name)
            for cpu in sorted(cpu_list.cpus):
                if cpu in owner:
                    problems.append(f"CPU {cpu} is in two CPU lists: {owner[cpu]} and {where}")
                else:
                    owner[cpu] = where
    return problems


def _entries(path: str) -> dict[str, str]:
    """Directory entries (kind 'file', 'dir' or 'symlink'...), skipping kcm's temp files."""
    try:
        with os.scandir(path) as scan:
            found = {}
            for entry in scan:
                if entry.name.startswith(TMP_PREFIX):
                    continue
                found[entry.name] = _kind(entry)
    except OSError as error:
        raise ConfigError(f"cannot read directory {path}: {error.strerror}") from None
    for name, kind in found.items():
        if kind == "symlink":
            raise ConfigError(f"{os.path.join(path, name)} is a symlink; kcm does not follow "
                              "symlinks in its configuration directory")
    return found


def _kind(entry: os.DirEntry) -> str:
    if entry.is_symlink():
        return "symlink"
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    if entry.is_file(follow_symlinks=False):
        return "file"
    return "special file"


def _read_text(path: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = os.read(fd, _MAX_FILE + 1)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > _MAX_FILE:
        raise ConfigError(f"{path} is too large ({_MAX_FILE} bytes at most)")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not ASCII text") from None


def _atomic_write(path: str, text: str, sync_dir: bool = True) -> None:
    directory, name = os.path.split(path)
    temp = os.path.join(directory, f"{TMP_PREFIX}{name}-{os.getpid()}")
    try:
        write_synced(temp, text)
        os.rename(temp, path)
        if sync_dir:
            fsync_path(directory)
    except OSError as error:
        _unlink_quietly(temp)
        reason = "no space left on device" if error.errno == errno.ENOSPC else error.strerror
        raise ConfigError(f"cannot write {path}: {reason}") from None




def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
