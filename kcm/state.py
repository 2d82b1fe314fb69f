"""The configuration directory: the only code that reads or writes its files.

Layout (compatible with the operator manual)::

    <conf-dir>/lock                              flock(2) target
    <conf-dir>/pools/<pool>/exclusive            "1" or "0"
    <conf-dir>/pools/<pool>/<cpulist>/tasks      comma-separated host PIDs
    <conf-dir>/pools/<pool>/<cpulist>/task-info  kcm's own: one line per task,
                                                 "PID START CHILD CHILD_START",
                                                 and "0 INODE MTIME_NS SIZE" lines

CMK v1.4.1 put a socket level between a pool and its CPU lists,
``pools/<pool>/<socket>/<cpulist>/tasks``. A pool is read that way when one of its
directories holds a directory; then every directory of the pool must be a socket
directory (a number, holding only CPU list directories, or nothing). Each CPU list
keeps its ``place`` (``<socket>/<cpulist>``), where its writes go; the rest of kcm
sees the CPU lists by name, as CMK's describe showed them.

``task-info`` lets reconcile tell a reused PID from the original (start times from
``/proc/PID/stat``) and keep a CPU list held while the workload outlives a killed
``kcm isolate``. It is written before ``tasks`` when a task is added and after it
when one is removed, so it always covers every PID in ``tasks``; a PID without a
line (a directory written by hand) is judged by existence alone.

``task-info`` is only trusted for the ``tasks`` file it was written with: its
PID-0 lines are the stamps (inode, mtime, size) of the ``tasks`` files kcm wrote
with it. When another writer (an older kcm, the original KCM or CMK, an operator)
changed ``tasks`` since, the stamp no longer matches and every task of that CPU
list falls back to "alive while the PID exists": a stale start time must never
make a live task look dead. Two lines for one PID make the file an error.

Every write goes to a ``.kcm-tmp-*`` file and is renamed into place; what must survive
a crash (a grant, init's files) is fsynced with its directory, reconcile's pass syncs all
its files at once between two lock holds (``stage_tasks``). Readers skip ``.kcm-tmp-*``
files: the debris a crash may leave, reconcile's staged files and the second names the
files renamed over keep until the lock is released (``ConfigDir.replaced``); reconcile
removes debris. Anything else unexpected (symlinks, unknown files, bad names or contents,
overlapping CPU lists) is a ConfigError naming the path.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from kcm import env, log
from kcm.cpuset import CpuSet, format_cpulist, parse_cpulist
from kcm.durable import fsync_path, rename, sync_filesystem, write_file
from kcm.errors import ConfigError, ConfigMissing, CpuListError, LockTimeout
from kcm.inputs import MAX_PID
from kcm.model import (
    Config,
    CpuList,
    Pool,
    Task,
    overlapping_cpus,
    split_place,
    valid_pool_name,
)

TYPE_CHECKING = False  # collections.abc costs ~3 ms on the isolate start-up path
if TYPE_CHECKING:
    from collections.abc import Iterable

TMP_PREFIX = ".kcm-tmp-"
IRQ_RECORD = "irqs"
"""kcm's record of the IRQ affinities it changed (``kcm enforce --steer-irqs``): one line
per IRQ, "IRQ CPULIST" with the affinity found before kcm moved it."""
_MAX_FILE = 1 << 20


def conf_dir_from(value: str | None) -> str:
    return env.conf_dir(value)


class ConfigDir:
    """One configuration directory on disk."""

    def __init__(self, path: str):
        self.path = path
        self.last_lock_wait = 0.0
        self.replaced: list[str] = []
        """Second names of the files renamed over under the lock, deleted once it is
        released: freeing a file is most of the cost of renaming over it (60-90 us on
        ext4), and that need not keep anyone waiting."""

    def _join(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    # -- locking ---------------------------------------------------------------

    def locked(self, shared: bool = False, timeout: float | None = None) -> _Lock:
        """``with conf.locked():`` holds the directory's flock, waiting at most
        ``timeout`` (default KCM_LOCK_TIMEOUT)."""
        return _Lock(self, shared, timeout)

    def _acquire(self, fd: int, shared: bool, limit: float, lock_path: str) -> None:
        """Take the flock, waiting at most ``limit`` seconds.

        A waiter sleeps in the kernel (blocking flock), woken by every release, with a
        timer to end the wait: unlike polling, no waiter sleeps through a release, so
        under contention the longest wait stays near the sum of the holds ahead of it.
        Threads other than the main one (where a timer signal cannot be handled) poll.
        """
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        started = time.monotonic()
        try:
            if _try_flock(fd, mode | fcntl.LOCK_NB) or (limit > 0 and _wait_flock(fd, mode, limit)):
                self.last_lock_wait = time.monotonic() - started
                return
        except OSError as error:
            raise ConfigError(f"cannot lock {lock_path}: {error.strerror}") from None
        raise LockTimeout(
            f"timed out after {limit:g}s waiting for the lock {lock_path} "
            "(KCM_LOCK_TIMEOUT); another kcm process holds it"
        )

    def _check_root(self) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            raise ConfigMissing(
                f"configuration directory {self.path} does not exist (run kcm init)"
            ) from None
        except OSError as error:
            raise ConfigError(f"cannot access {self.path}: {error.strerror}") from None
        if stat.S_ISLNK(info.st_mode):
            raise ConfigError(f"{self.path} is a symlink; kcm does not follow symlinks")
        if not stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{self.path} is not a directory")

    def removed(self) -> bool:
        """True when the directory holds no pools (``kcm uninstall`` removed them, or no
        ``kcm init`` has run): the node's agents then leave it alone, creating nothing
        in it (not even the lock file) and publishing nothing for it."""
        return not os.path.isdir(self._join("pools"))

    # -- reading -----------------------------------------------------------------

    def load(self, warn_overlap: bool = True) -> Config:
        """Read and validate the whole directory (call under the lock).

        A CPU in two CPU lists is not an error: the original KCM and CMK accept such
        directories (their own fixtures put CPU 0 in an exclusive and a shared pool), so
        kcm works on them and warns, once per process (``warn_overlap=False``: the caller
        reports them itself, as the node report's failed check). Only init refuses to
        create an overlap, and its plans never do."""
        return self.parse(self.read(), warn_overlap)

    def read(self) -> Snapshot:
        """Every file of the directory, as read (call under the lock); ``parse`` checks
        and decodes it after the lock is given back, for a reader that writes nothing
        (describe): the lock is held for the reads alone."""
        pools_dir = self._pools_dir()
        return Snapshot(self.path, [
            (name, kind, _read_pool(f"{pools_dir}/{name}") if kind == "dir" else None)
            for name, kind in sorted(_entries(pools_dir).items())])

    def parse(self, snapshot: Snapshot, warn_overlap: bool = True) -> Config:
        """The configuration a ``read`` saw, validated (see ``load``)."""
        pools = {}
        for name, kind, read in snapshot.pools:
            if read is None or not valid_pool_name(name):
                raise ConfigError(f"bad pool {kind} name {self.path}/pools/{name}")
            pools[name] = _parse_pool(read, name)
        config = Config(self.path, pools)
        if warn_overlap:
            overlap = overlapping_cpus(config)
            if overlap and overlap[0] not in _WARNED:
                _WARNED.add(overlap[0])
                more = f" (and {len(overlap) - 1} more)" if len(overlap) > 1 else ""
                log.warning(f"{overlap[0]}{more}: pools that share CPUs are not exclusive")
        return config

    def pools_overview(self, own: str | None = None) -> dict[str, tuple[bool, dict[str, CpuSet]]]:
        """Every pool's exclusive flag and CPU lists, from the flag files and directory
        names alone (no task is read; call without the lock: only init changes them).
        The lists of ``own`` are skipped when it is exclusive (isolate knows its own).
        A damaged pool is left out: the commands that read everything say what is wrong."""
        found: dict[str, tuple[bool, dict[str, CpuSet]]] = {}
        try:
            pools_dir = self._pools_dir()
            pools = sorted(_entries(pools_dir).items())
        except ConfigError:
            return found
        for name, kind in pools:
            path = os.path.join(pools_dir, name)
            try:
                if kind != "dir":
                    continue
                flag = _read_text(os.path.join(path, "exclusive")).strip()
                lists = {} if name == own and flag == "1" else {
                    list_name: parse_cpulist(list_name) for _, list_name in
                    map(split_place, _list_places(path, _entries(path)))}
            except (ConfigError, CpuListError):
                continue
            found[name] = (flag == "1", lists)
        return found

    def load_pool(self, name: str) -> Pool:
        """One pool, for a writer that changes only its tasks (isolate; call under the
        lock). Reads and checks that pool alone, so the lock is held as long on a node
        of a thousand CPU lists as on one of four; the other pools are checked by the
        commands that read them all (reconcile, describe, doctor, node-report)."""
        pools_dir = self._pools_dir()
        path = os.path.join(pools_dir, name)
        entries = _entries(pools_dir)
        kind = entries.get(name) if valid_pool_name(name) else None
        if kind is None:  # Config.pool says "unknown pool", naming the pools there are
            Config(self.path, {other: Pool(other, False) for other in entries
                               if valid_pool_name(other)}).pool(name)
        if kind != "dir":
            raise ConfigError(f"bad pool {kind} name {path}")
        pool = _parse_pool(_read_pool(path), name)
        overlap = overlapping_cpus(Config(self.path, {name: pool}))
        if overlap:
            raise ConfigError(overlap[0])
        return pool

    def _pools_dir(self) -> str:
        """The ``pools`` directory, once the directory's top level checks out."""
        self._check_root()
        entries = _entries(self.path)
        for name, kind in entries.items():
            if (name in ("lock", IRQ_RECORD) and kind == "file") or (
                    name == "pools" and kind == "dir"):
                continue
            raise ConfigError(f"unexpected {kind} {self._join(name)} in configuration directory")
        if "pools" not in entries:
            raise ConfigMissing(f"{self.path} is not a kcm configuration directory (no pools/; "
                                "run kcm init)")
        return self._join("pools")

    def load_cpu_lists(self, pool: str, places: list[str]) -> list[CpuList]:
        """Only these CPU lists of a pool, by place (call under the lock): for a writer
        that already knows what it holds, such as isolate giving its lists back."""
        self._check_root()
        lists = []
        for place in places:
            path = self._join("pools", pool, place)
            socket = split_place(place)[0]
            if socket and not _is_socket_name(socket):
                raise ConfigError(f"bad socket directory {os.path.dirname(path)}")
            lists.append(_parse_cpu_list(_read_cpu_list(path, place)))
        return lists

    def cpu_list_directories(self) -> list[str]:
        """The directories whose ``tasks`` files a grant or a release changes (for a
        watcher: no error, a damaged part of the directory is left out)."""
        found = []
        pools = self._join("pools")
        for pool in _subdirectories(pools):
            path = os.path.join(pools, pool)
            try:
                found += [os.path.join(path, place) for place in _list_places(path, _entries(path))]
            except ConfigError:
                continue
        return found

    def load_irq_record(self) -> dict[str, CpuSet]:
        """The IRQ affinities kcm changed, as they were before (call under the lock)."""
        path = self._join(IRQ_RECORD)
        if not os.path.lexists(path):
            return {}
        record = {}
        for number, line in enumerate(_read_text(path).splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            try:
                if len(fields) != 2 or not (fields[0].isdigit() or fields[0] == "default"):
                    raise CpuListError("expected IRQ and CPU list")
                record[fields[0]] = parse_cpulist(fields[1])
            except CpuListError as error:
                raise ConfigError(f"{path}:{number}: {error}") from None
        return record

    def save_irq_record(self, record: dict[str, CpuSet]) -> None:
        """Replace the IRQ record (call under the lock); no file when it is empty."""
        path = self._join(IRQ_RECORD)
        if record:
            _atomic_write(path, "".join(f"{irq} {format_cpulist(cpus)}\n"
                                        for irq, cpus in sorted(record.items())))
        elif os.path.lexists(path):
            _unlink_quietly(path)

    # -- writing -----------------------------------------------------------------

    def save_tasks(self, pool: str, cpu_list: CpuList, tasks: list[Task],
                   durable: bool = False) -> None:
        """Replace a CPU list's tasks on disk (call under the lock) and in ``cpu_list``.

        ``durable``: on disk before this returns, as a grant must be before its workload
        runs: two fsyncs, the new ``tasks`` file's data and then the directory (its
        rename and the ``task-info`` rename before it). Otherwise (a release, a reclaim)
        nothing is synced: a crash may lose the change, which only leaves a dead task
        for the next reconcile. ``task-info`` is renamed before ``tasks`` when tasks are
        added and after when they are removed, so it covers every PID of ``tasks``; if a
        crash loses its data, its stamps no longer match and the list's tasks are judged
        by existence alone.
        """
        directory = self._join("pools", pool, cpu_list.place)
        info_path = os.path.join(directory, "task-info")
        tasks_path = os.path.join(directory, "tasks")
        temp, stamp = _write_temp(tasks_path, _format_tasks(tasks), sync=durable)
        stamps = [s for s in (cpu_list.stamp, stamp) if s is not None]
        merged = {task.pid: task for task in cpu_list.tasks}
        merged.update({task.pid: task for task in tasks})
        final = _format_info(tasks, stamps)
        if len(merged) > len(cpu_list.tasks):
            covering = _format_info(merged.values(), stamps)
            _atomic_write(info_path, covering, sync=False, sync_dir=False, keep=self.replaced)
            _rename(temp, tasks_path, sync_dir=durable and final == covering, keep=self.replaced)
            if final != covering:
                _atomic_write(info_path, final, sync=False, sync_dir=durable, keep=self.replaced)
        else:
            _rename(temp, tasks_path, sync_dir=False, keep=self.replaced)
            _atomic_write(info_path, final, sync=False, sync_dir=durable, keep=self.replaced)
        cpu_list.tasks = list(tasks)
        cpu_list.stamp = stamp

    def stage_tasks(self, changes: list[tuple[str, CpuList, list[Task]]]) -> list[StagedTasks]:
        """Write the new tasks of many CPU lists, as loaded under the lock, beside them:
        not synced, not in place (reconcile's pass; call without the lock). Then
        ``sync_staged``, also without it, and ``commit_staged`` under it."""
        staged: list[StagedTasks] = []
        try:
            for pool, cpu_list, tasks in changes:
                directory = self._join("pools", pool, cpu_list.place)
                temp, stamp = _write_temp(os.path.join(directory, "tasks"),
                                          _format_tasks(tasks), sync=False)
                change = StagedTasks(pool, cpu_list, tasks, temp, stamp)
                staged.append(change)
                stamps = [s for s in (cpu_list.stamp, stamp) if s is not None]
                change.info_temp, _ = _write_temp(os.path.join(directory, "task-info"),
                                                  _format_info(tasks, stamps), sync=False)
        except BaseException:
            self.discard_staged(staged)
            raise
        return staged

    def sync_staged(self, staged: list[StagedTasks]) -> None:
        """Make the staged files durable, with one ``syncfs`` whatever their number.
        Call without the lock: syncfs also writes out everything else the file system
        holds dirty (seconds, on a node pulling an image), and no isolate may wait on it."""
        if staged:
            sync_filesystem(self.path, [name for change in staged for name in change.temps()])

    def commit_staged(self, staged: list[StagedTasks]) -> list[StagedTasks]:
        """Rename into place each staged change whose CPU list is as it was when it was
        read (the same ``tasks`` file) and drop the rest: an isolate changed them
        meanwhile, or they went; the next pass sees them afresh. Call under
        the lock. A crash leaves each file old or new, never torn; the renames are not
        synced (a lost one leaves dead tasks for the next pass). What was committed."""
        committed = []
        for change in staged:
            if self._unchanged_since_staged(change):
                directory = self._join("pools", change.pool, change.cpu_list.place)
                for temp, name in ((change.tasks_temp, "tasks"), (change.info_temp, "task-info")):
                    _rename(temp, os.path.join(directory, name), sync_dir=False,
                            keep=self.replaced)
                change.cpu_list.tasks = list(change.tasks)
                change.cpu_list.stamp = change.stamp
                committed.append(change)
            else:
                self.discard_staged([change])
        return committed

    def _drop_replaced(self) -> None:
        """Delete the files renamed over under the lock (``replaced``); the lock's
        release calls it."""
        for name in self.replaced:
            _unlink_quietly(name)
        self.replaced.clear()

    def discard_staged(self, staged: list[StagedTasks]) -> None:
        """Delete staged files that were not committed."""
        for change in staged:
            for name in change.temps():
                _unlink_quietly(name)

    def _unchanged_since_staged(self, change: StagedTasks) -> bool:
        """Whether the ``tasks`` file is the one the change was computed from: every kcm
        writer renames a new file over it (a new inode), an editor changes its mtime."""
        if not all(os.path.isfile(name) for name in change.temps()):
            return False  # another reconcile took them for a crash's debris
        path = self._join("pools", change.pool, change.cpu_list.place, "tasks")
        try:
            now = os.lstat(path)
        except OSError:
            return False
        return (now.st_ino, now.st_mtime_ns, now.st_size) == change.cpu_list.stamp

    def remove_debris(self) -> list[str]:
        """Delete ``.kcm-tmp-*`` files left by crashed writers (call under the lock)."""
        removed = []
        for directory, dirs, files in os.walk(self.path):
            for name in files + dirs:
                if name.startswith(TMP_PREFIX):
                    path = os.path.join(directory, name)
                    if os.path.isdir(path) and not os.path.islink(path):
                        import shutil  # rare (debris of a crash), and costly to import

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
        # The pools go first: a node agent still running sees the directory removed and
        # leaves it alone; one that opened the lock file just before may still make it
        # again, so the last step is retried a few times.
        names = sorted(os.listdir(self.path), key=lambda name: name != "pools")
        for attempt in range(20):
            try:
                for name in names:
                    path = self._join(name)
                    if os.path.isdir(path) and not os.path.islink(path):
                        shutil.rmtree(path)
                    elif os.path.lexists(path):
                        os.unlink(path)
            except OSError as error:
                raise ConfigError(f"cannot remove {error.filename or self.path}: "
                                  f"{error.strerror}") from None
            try:
                os.rmdir(self.path)
                return True
            except OSError as error:
                if error.errno in (errno.EBUSY, errno.EACCES, errno.EPERM, errno.EROFS):
                    return True  # a mount point (a hostPath volume) stays, empty
                left = os.listdir(self.path) if error.errno == errno.ENOTEMPTY else []
                if not left or not all(_is_kcm_remains(name) for name in left) or attempt == 19:
                    raise ConfigError(f"cannot remove {self.path}: {error.strerror}") from None
                names = left
                time.sleep(0.05)
        return True

    def retire(self) -> bool:
        """Take the pools away in one rename (under the lock), the first step of removing
        the directory: from then on every command sees it removed (``removed``). False
        when there were none."""
        with self.locked():
            try:
                os.rename(self._join("pools"), self._join(f"{TMP_PREFIX}retired-pools"))
            except FileNotFoundError:
                return False
            except OSError as error:
                raise ConfigError(f"cannot remove {self._join('pools')}: "
                                  f"{error.strerror}") from None
        return True

    def only_remains(self) -> bool:
        """True when the directory holds nothing but what kcm's commands leave in a
        removed directory (its lock file, crash debris): kcm's own, to remove."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return False
        return all(_is_kcm_remains(name) for name in names)

    def create(self, pools: Iterable[tuple[str, bool, list[CpuSet]]],
               sockets: dict[int, int] | None = None) -> bool:
        """Create the directory with these pools; False if it already holds exactly them.

        ``sockets`` (each CPU's socket) asks for CMK v1.4.1's layout: every pool gets a
        directory per socket, each CPU list goes in its socket's (a list must not span
        two). The pools are built in a temporary directory inside the target and renamed
        into place as a whole, so a failed or killed init leaves no half directory (the
        target itself may be a mount point, so it is never renamed).
        """
        wanted = {name: (exclusive, sorted(_planned_place(cpus, sockets) for cpus in lists))
                  for name, exclusive, lists in pools}
        socket_dirs = sorted(set(sockets.values())) if sockets else []
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
                self._build(wanted, socket_dirs)
                return True
        except BaseException:
            if created:
                _remove_tree(self.path)
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
            return {name: (pool.exclusive, sorted((split_place(cl.place)[0], sorted(cl.cpus))
                                                  for cl in pool.cpu_lists.values()))
                    for name, pool in config.pools.items()}
        foreign = [name for name in entries if name != "lock"]
        if foreign:
            raise ConfigError(
                f"{self.path} is not empty and not a kcm configuration directory "
                f"(found {', '.join(sorted(foreign)[:3])})"
            )
        return None

    def _build(self, wanted: dict, socket_dirs: list[int]) -> None:
        staging = self._join(f"{TMP_PREFIX}init-{os.getpid()}")
        _remove_tree(staging)
        try:
            root = os.path.join(staging, "pools")
            os.makedirs(root)
            for name, (exclusive, lists) in sorted(wanted.items()):
                pool_dir = os.path.join(root, name)
                os.mkdir(pool_dir)
                write_file(os.path.join(pool_dir, "exclusive"), "1" if exclusive else "0")
                for socket in socket_dirs:
                    os.mkdir(os.path.join(pool_dir, str(socket)))
                for socket, cpus in lists:
                    list_dir = os.path.join(pool_dir, socket, format_cpulist(cpus))
                    os.mkdir(list_dir)
                    write_file(os.path.join(list_dir, "tasks"), "")
                    fsync_path(list_dir)
                for socket in socket_dirs:
                    fsync_path(os.path.join(pool_dir, str(socket)))
                fsync_path(pool_dir)
            fsync_path(root)
            rename(root, self._join("pools"))
        except OSError as error:
            raise ConfigError(f"cannot write {self.path}: {error.strerror}") from None
        finally:
            _remove_tree(staging)


def _is_kcm_remains(name: str) -> bool:
    """What a directory whose pools are gone may still hold of kcm's: the lock file, the
    IRQ record, retired pools and crash debris."""
    return name in ("lock", IRQ_RECORD) or name.startswith(TMP_PREFIX)


def _planned_place(cpus: CpuSet, sockets: dict[int, int] | None) -> tuple[str, list[int]]:
    """(socket directory, or "" in kcm's flat layout; the CPUs) of a CPU list to create."""
    if not sockets:
        return "", sorted(cpus)
    found = {sockets.get(cpu) for cpu in cpus}
    if len(found) != 1 or None in found:
        raise ConfigError(f"CPU list {format_cpulist(cpus)} does not lie in one socket; "
                          "the socket layout needs each list in one")
    return str(found.pop()), sorted(cpus)


def _remove_tree(path: str) -> None:
    """Remove a staging tree if there is one (shutil, costly to import, only when it is
    not an empty directory)."""
    try:
        os.rmdir(path)
    except OSError:
        if os.path.lexists(path):
            import shutil

            shutil.rmtree(path, ignore_errors=True)


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
        limit = env.lock_timeout() if self.timeout is None else self.timeout
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
        held = time.monotonic() - self.acquired
        if self.conf.replaced:
            self.conf._drop_replaced()
        if log.enabled("DEBUG"):
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
        hint = (" (the configuration directory is root's: a container that runs kcm isolate "
                "runs as root, which the webhook sets)" if error.errno == errno.EACCES else "")
        raise ConfigError(f"cannot open lock file {lock_path}: {error.strerror}{hint}") from None


_WARNED: set[str] = set()
"""Overlap warnings already given by this process (a reconcile loop warns once)."""


class Snapshot:
    """A configuration directory as ``ConfigDir.read`` found it: each pool's name, kind
    and files, not yet checked."""

    __slots__ = ("path", "pools")

    def __init__(self, path: str, pools: list[tuple[str, str, _PoolRead | None]]):
        self.path = path
        self.pools = pools


class _PoolRead:
    __slots__ = ("entries", "flag", "lists", "path")

    def __init__(self, path: str, entries: dict[str, str], flag: str | None,
                 lists: list[_ListRead]):
        self.path = path
        self.entries = entries
        self.flag = flag
        self.lists = lists


class StagedTasks:
    """New tasks for one CPU list, in temporary files beside its own until committed."""

    __slots__ = ("cpu_list", "info_temp", "pool", "stamp", "tasks", "tasks_temp")

    def __init__(self, pool: str, cpu_list: CpuList, tasks: list[Task], tasks_temp: str,
                 stamp: tuple[int, int, int]):
        self.pool = pool
        self.cpu_list = cpu_list  # as loaded: its tasks and stamp are what was replaced
        self.tasks = tasks
        self.tasks_temp = tasks_temp
        self.info_temp = ""
        self.stamp = stamp

    def temps(self) -> list[str]:
        return [name for name in (self.tasks_temp, self.info_temp) if name]


class _ListRead:
    __slots__ = ("entries", "info", "path", "place", "stamp", "tasks")

    def __init__(self, path: str, place: str, entries: dict[str, str], tasks: str,
                 stamp: tuple[int, int, int] | None, info: str | None):
        self.path = path
        self.place = place
        self.entries = entries
        self.tasks = tasks
        self.stamp = stamp
        self.info = info


def _read_pool(path: str) -> _PoolRead:
    """A pool's files as they are (the reads that need the lock; ``_parse_pool`` checks)."""
    entries = _entries(path)
    flag = _read_text(f"{path}/exclusive") if entries.get("exclusive") == "file" else None
    return _PoolRead(path, entries, flag, [
        _read_cpu_list(f"{path}/{place}", place, list_entries)
        for place, list_entries in _list_entries(path, entries).items()])


def _read_cpu_list(path: str, place: str, entries: dict[str, str] | None = None) -> _ListRead:
    if entries is None:
        entries = _entries(path)
    tasks, stamp = _read_file(f"{path}/tasks") if entries.get("tasks") == "file" else ("", None)
    info = _read_text(f"{path}/task-info") if entries.get("task-info") == "file" else None
    return _ListRead(path, place, entries, tasks, stamp, info)


def _parse_pool(read: _PoolRead, name: str) -> Pool:
    path, entries = read.path, read.entries
    if read.flag is None:
        raise ConfigError(f"pool {name}: missing file {path}/exclusive")
    flag = read.flag.strip()
    if flag not in ("0", "1"):
        raise ConfigError(f"{path}/exclusive: expected 0 or 1, found {flag!r}")
    pool = Pool(name, flag == "1")
    for entry, kind in entries.items():
        if entry != "exclusive" and kind != "dir":
            raise ConfigError(f"unexpected {kind} {path}/{entry} in pool {name}")
    for list_read in read.lists:
        cpu_list = _parse_cpu_list(list_read)
        if cpu_list.name in pool.cpu_lists:
            raise ConfigError(f"CPU list {cpu_list.name} of pool {name} is in two socket "
                              f"directories: {pool.cpu_lists[cpu_list.name].place} and "
                              f"{cpu_list.place}")
        pool.cpu_lists[cpu_list.name] = cpu_list
    return pool


def _list_places(path: str, entries: dict[str, str]) -> list[str]:
    """The CPU list directories of the pool at ``path``, as places inside it: its
    directories, or, when one of them holds a directory (CMK v1.4.1's socket level),
    the directories inside each socket directory. Only directories named by a number
    can be socket directories, so a kcm pool of lists such as ``4,12`` costs no scan."""
    return list(_list_entries(path, entries))


def _list_entries(path: str, entries: dict[str, str]) -> dict[str, dict[str, str] | None]:
    """``_list_places`` with each CPU list directory's entries when they were read on
    the way (None when not)."""
    directories = sorted(entry for entry, kind in entries.items() if kind == "dir")
    inside = {entry: _entries(f"{path}/{entry}")
              for entry in directories if _is_socket_name(entry)}
    sockets = [entry for entry, found in inside.items() if "dir" in found.values()]
    if not sockets:
        return {entry: inside.get(entry) for entry in directories}
    places: dict[str, dict[str, str] | None] = {}
    for entry in directories:
        entry_path = os.path.join(path, entry)
        if entry not in inside:
            raise ConfigError(f"{entry_path} is a CPU list beside the socket directory "
                              f"{os.path.join(path, sockets[0])}; a pool has one layout")
        for inner, kind in sorted(inside[entry].items()):
            if kind != "dir":
                raise ConfigError(f"unexpected {kind} {os.path.join(entry_path, inner)} in "
                                  "socket directory")
            places[f"{entry}/{inner}"] = None
    return places


def _is_socket_name(name: str) -> bool:
    return name.isascii() and name.isdigit() and len(name) <= 5


def _subdirectories(path: str) -> list[str]:
    try:
        return sorted(entry for entry, kind in _entries(path).items() if kind == "dir")
    except ConfigError:
        return []


def _list_cpus(path: str, name: str) -> CpuSet:
    """The CPUs a CPU list directory's name gives (never empty)."""
    try:
        cpus = parse_cpulist(name)
    except CpuListError as error:
        raise ConfigError(f"bad CPU list directory {path}: {error}") from None
    if not cpus:
        raise ConfigError(f"bad CPU list directory {path}: empty")
    return cpus


def _parse_cpu_list(read: _ListRead) -> CpuList:
    path, entries = read.path, read.entries
    for entry, kind in entries.items():
        if entry in ("tasks", "task-info") and kind == "file":
            continue
        raise ConfigError(f"unexpected {kind} {path}/{entry} in CPU list")
    name = split_place(read.place)[1]
    cpus = _list_cpus(path, name)
    tasks_path = f"{path}/tasks"
    problems: list[str] = []
    pids = _pids(read.tasks, tasks_path, problems)
    info: dict[int, Task] = {}
    if read.info is not None:
        try:
            info, stamps = _parse_info(read.info, f"{path}/task-info")
        except ConfigError as error:
            problems.append(str(error))
            info, stamps = {}, []
        if read.stamp not in stamps:
            # Another writer (or a touch) changed tasks since kcm wrote these lines: each
            # still names its process, but a PID may now mean a process that started
            # before tasks was written (procfs.Liveness).
            listed = read.stamp[1] if read.stamp else 0
            info = {pid: Task(t.pid, t.start, t.child, t.child_start, listed)
                    for pid, t in info.items()}
    unreadable = "; ".join(problems) or None
    if unreadable:
        log.warning(f"{unreadable} (this CPU list counts as held until it is mended)")
    return CpuList(name, cpus, [info.get(pid, Task(pid)) for pid in pids], read.stamp,
                   read.place, unreadable)


def _pids(text: str, path: str, problems: list[str]) -> list[int]:
    """The PIDs of a ``tasks`` file. A PID no system can have (0, or above
    MAX_PID: the original KCM's tests write 1234561231 for "dead") is reported and
    kept, to be judged not running; any other word is a problem of the list."""
    pids: list[int] = []
    stripped = text.strip()
    for item in stripped.split(",") if stripped else []:
        value = item.strip()
        if not (value.isascii() and value.isdigit()) or len(value) > 24:
            problems.append(f"{path}: {_quote(value)} is not a PID")
            continue
        pid = int(value)
        if pid in pids:
            problems.append(f"{path}: PID {pid} is listed twice")
            continue
        if not 0 < pid <= MAX_PID:
            log.warning(f"{path}: {pid} cannot be a PID on any system: taken as not running")
        pids.append(pid)
    return pids


def _parse_info(text: str, path: str) -> tuple[dict[int, Task], list[tuple[int, int, int]]]:
    """The tasks of a ``task-info`` file by PID, and the ``tasks`` stamps it is for."""
    tasks: dict[int, Task] = {}
    stamps = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4 or not all(
                f == "-" or (f.isascii() and f.isdigit() and len(f) <= 24) for f in fields):
            raise ConfigError(f"{path}:{number}: malformed task line {_quote(line[:60])}")
        values = [None if f == "-" else int(f) for f in fields]
        pid = values[0]
        if pid is None:
            raise ConfigError(f"{path}:{number}: task line without a PID")
        if pid == 0:
            if None not in values:
                stamps.append((values[1], values[2], values[3]))
            continue
        if pid in tasks:
            raise ConfigError(f"{path}:{number}: a second line for PID {pid}; "
                              "kcm cannot tell which one holds")
        tasks[pid] = Task(*values)
    return tasks, stamps


def _format_tasks(tasks: Iterable[Task]) -> str:
    return ",".join(str(task.pid) for task in tasks)


def _format_info(tasks: Iterable[Task], stamps: list[tuple[int, int, int]]) -> str:
    def field_text(value: int | None) -> str:
        return "-" if value is None else str(value)

    lines = [f"0 {inode} {mtime} {size}\n" for inode, mtime, size in stamps]
    lines += [" ".join(map(field_text, (t.pid, t.start, t.child, t.child_start))) + "\n"
              for t in sorted(tasks, key=lambda t: t.pid)]
    return "".join(lines)


def _quote(text: str) -> str:
    """Text from a file, for a one-line error (at most 40 characters of it)."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + f"... ({len(text)} characters)"


def _entries(path: str) -> dict[str, str]:
    """Directory entries (kind 'file', 'dir' or 'special file'), skipping kcm's temp
    files; a symlink is an error. (Read for every CPU list under the lock: one pass.)"""
    found = {}
    try:
        with os.scandir(path) as scan:
            for entry in scan:
                name = entry.name
                if name.startswith(TMP_PREFIX):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    found[name] = "dir"
                elif entry.is_file(follow_symlinks=False):
                    found[name] = "file"
                elif entry.is_symlink():
                    raise ConfigError(f"{path}/{name} is a symlink; kcm does not follow "
                                      "symlinks in its configuration directory")
                else:
                    found[name] = "special file"
    except OSError as error:
        raise ConfigError(f"cannot read directory {path}: {error.strerror}") from None
    return found


def _read_text(path: str) -> str:
    return _read_file(path)[0]


def _read_file(path: str) -> tuple[str, tuple[int, int, int]]:
    """A file's text and stamp (inode, mtime in ns, size), never through a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = os.read(fd, _MAX_FILE + 1)
        info = os.fstat(fd)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > _MAX_FILE:
        raise ConfigError(f"{path} is too large ({_MAX_FILE} bytes at most)")
    try:
        return data.decode("ascii"), (info.st_ino, info.st_mtime_ns, info.st_size)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not ASCII text") from None


def _try_flock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode)
        return True
    except BlockingIOError:
        return False


class _Expired(Exception):
    pass


def _expire(_signum: int, _frame: object) -> None:
    raise _Expired


def _wait_flock(fd: int, mode: int, limit: float) -> bool:
    """Block in flock for at most ``limit`` seconds; False when the time ran out."""
    import _signal as signal  # the public module imports enum: milliseconds per isolate

    try:
        previous = signal.signal(signal.SIGALRM, _expire)
    except ValueError:  # not the main thread, where a signal cannot be handled
        return _poll_flock(fd, mode, limit)
    try:
        signal.setitimer(signal.ITIMER_REAL, limit)
        fcntl.flock(fd, mode)
        signal.setitimer(signal.ITIMER_REAL, 0)
        return True
    except _Expired:
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _poll_flock(fd: int, mode: int, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while not _try_flock(fd, mode | fcntl.LOCK_NB):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.001)
    return True


def _write_temp(path: str, text: str, sync: bool = True) -> tuple[str, tuple[int, int, int]]:
    """Write ``text`` to a temporary file beside ``path`` (fsynced unless ``sync`` is
    False); (its path, its stamp)."""
    directory, name = os.path.split(path)
    temp = os.path.join(directory, f"{TMP_PREFIX}{name}-{os.getpid()}")
    try:
        write_file(temp, text, sync)
        info = os.stat(temp)
    except OSError as error:
        _unlink_quietly(temp)
        raise ConfigError(f"cannot write {path}: {_reason(error)}") from None
    return temp, (info.st_ino, info.st_mtime_ns, info.st_size)


def _keep_second_name(path: str, keep: list[str]) -> None:
    """Link ``path`` to a ``.kcm-tmp-*`` name beside it, added to ``keep``, so that
    renaming over it does not free it yet. Nothing when there is no file (or no link)."""
    directory, name = os.path.split(path)
    link = os.path.join(directory, f"{TMP_PREFIX}replaced-{name}-{os.getpid()}-{len(keep)}")
    try:
        os.link(path, link, follow_symlinks=False)
    except OSError:
        return
    keep.append(link)


def _rename(temp: str, path: str, sync_dir: bool = True, keep: list[str] | None = None) -> None:
    """Rename ``temp`` over ``path``; with ``keep``, the file replaced keeps a second name
    (see ``ConfigDir.replaced``)."""
    try:
        if keep is not None:
            _keep_second_name(path, keep)
        rename(temp, path, sync_dir)
    except OSError as error:
        _unlink_quietly(temp)
        raise ConfigError(f"cannot write {path}: {_reason(error)}") from None


def _atomic_write(path: str, text: str, sync: bool = True, sync_dir: bool = True,
                  keep: list[str] | None = None) -> None:
    temp, _ = _write_temp(path, text, sync)
    _rename(temp, path, sync_dir, keep)


def _reason(error: OSError) -> str:
    return "no space left on device" if error.errno == errno.ENOSPC else str(error.strerror)




def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
