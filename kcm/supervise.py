"""Starting a workload and standing by it until it exits.

The child is forked *before* the CPU list is chosen and waits on a pipe: it first
reports its host PID and start time (so the record names the workload too), then
waits for "go CPUS" (pin and exec) or for the pipe to close (exit without running
anything). This way nothing is recorded for a command that never starts, and the
lock is never held while a process is being created.

Forwarded signals are blocked from before the fork until the child has been told
to go, then delivered to it; so a signal that arrives early is not lost and the
exit status always tells what happened to the workload (128+N for signal N).

The lease covers the workload's whole process tree. kcm isolate is a child subreaper
(PID 1 is one already), so every descendant whose parent dies becomes its child and
"no child left" means "no process of the workload left". The workload leads a process
group of its own (unless kcm isolate runs in the foreground of a terminal, where the
terminal's job control keeps the job one group): forwarded signals reach that group
and every other descendant. When the main process exits, what is left of the workload
gets SIGTERM, then SIGKILL after ``KCM_STOP_GRACE`` seconds, and the CPU lists are
released only once the last of it is gone, as a container runtime ends a container.
"""

from __future__ import annotations

# The public signal module imports enum (about 3 ms on every workload start); its C
# core offers the same functions and constants.
import _signal as signal
import os

from kcm.cpuset import CpuSet, format_cpulist, format_mask, parse_cpulist
from kcm.errors import InputError, ProcessError
from kcm.procfs import ProcessStat, all_processes, self_stat

TYPE_CHECKING = False  # collections.abc costs ~3 ms on the isolate start-up path
if TYPE_CHECKING:
    from collections.abc import Sequence

FORWARDED_SIGNALS = (
    signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
)
# Python ignores these; exec keeps ignored signals ignored, so put them back.
_RESTORED_SIGNALS = ("SIGPIPE", "SIGXFSZ", "SIGXFZ")


SHELL = "/bin/sh"
_SHELL_SYNTAX = frozenset("|&;<>()$`\\\"'*?[]#~{}")


_COMPOUND = frozenset(";&|\n(){}")


def shell_form(argv: Sequence[str]) -> list[str]:
    """The originals' form: one command word that is not itself a command and contains
    whitespace or shell syntax runs under ``/bin/sh -c``; any other argv runs as it is.
    A simple command of a program (no ``; & | ( ) { }``, newline or leading assignment,
    and a first word that is an executable, not a builtin like ``exit`` or ``cd``) is
    run with ``exec``, so the shell becomes it; otherwise the shell stays, and its exit
    status is the last command's. Either way the signals kcm forwards reach every
    process of the workload."""
    if not argv or not argv[0].strip():
        raise InputError("the command is empty: give the command to run after the options")
    if len(argv) != 1 or not any(c.isspace() or c in _SHELL_SYNTAX for c in argv[0]):
        return list(argv)
    try:
        find_executable(argv[0])
        return list(argv)  # a command whose name has a space in it: run it, no shell
    except ProcessError:
        pass
    text = argv[0]
    first = text.split(None, 1)[0]
    name, equals, _ = first.partition("=")
    assignment = bool(equals) and name.isidentifier()
    if any(c in _COMPOUND for c in text) or assignment or not _is_program(first):
        return [SHELL, "-c", text]
    return [SHELL, "-c", f"exec {text}"]


def _is_program(word: str) -> bool:
    """A plain word that names an executable (what ``exec WORD`` can run)."""
    if any(c in _SHELL_SYNTAX for c in word):
        return False
    try:
        find_executable(word)
        return True
    except ProcessError:
        return False


def find_executable(name: str) -> str:
    """Resolve a command like execvp would; exit codes 127/126 like env(1)."""
    if "/" in name:
        candidates = [name]
    else:
        path = os.environ.get("PATH", os.defpath)
        candidates = [os.path.join(directory or ".", name) for directory in path.split(":")]
    denied = None
    for candidate in candidates:
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            denied = candidate
    if denied:
        error = ProcessError(f"cannot run {name}: {denied} is not executable")
        error.exit_code = 126
        raise error
    error = ProcessError(f"cannot run {name}: command not found")
    error.exit_code = 127
    raise error


PR_SET_CHILD_SUBREAPER = 36
KILL_SWEEP = 1.0
"""Seconds between SIGKILL sweeps once the grace period is over (a process forked as
the first sweep ran is caught by the next)."""


def become_subreaper() -> None:
    """Adopt the workload's orphans (prctl PR_SET_CHILD_SUBREAPER); PID 1 already does."""
    if os.getpid() == 1:
        return
    import ctypes  # ~1.5 ms; the standard library has no prctl

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise ProcessError(f"cannot adopt the workload's processes: "
                           f"{os.strerror(ctypes.get_errno())}")


def in_terminal_foreground() -> bool:
    """True when this process's group is the foreground job of its terminal."""
    try:
        return os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


class Workload:
    """A forked child waiting to exec ``argv`` once it is told which CPUs it has."""

    def __init__(self, executable: str, argv: Sequence[str], proc_root: str):
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
        become_subreaper()
        self.own_group = not in_terminal_foreground()
        report_r, report_w = os.pipe()
        go_r, go_w = os.pipe()
        error_r, error_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which execs or _exits
            os.close(report_r)
            os.close(go_w)
            os.close(error_r)
            if self.own_group:
                os.setpgid(0, 0)
            _child(executable, list(argv), proc_root, report_w, go_r, error_w)
        if self.own_group:
            try:
                os.setpgid(pid, pid)  # also here, so no signal finds it in our group
            except OSError:
                pass  # it did it itself (and may have exec'd)
        os.close(report_w)
        os.close(go_r)
        os.close(error_w)
        self.pid = pid
        self._go = go_w
        self._errors = error_r
        self._reaped = False
        self._status: int | None = None
        report = _read_all(report_r)
        os.close(report_r)
        fields = report.split()
        if len(fields) != 2:
            self.abandon()
            raise ProcessError(f"the workload process could not read its host PID: {report!r}")
        self.host_pid, self.host_start = int(fields[0]), int(fields[1])

    def abandon(self) -> None:
        """Let the waiting child exit without running anything, and reap it."""
        os.close(self._go)
        os.close(self._errors)
        self._wait_quietly()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)

    def start(self, cpus: CpuSet, pin: bool, extra_env: dict[str, str]) -> None:
        """Tell the child to pin itself (if ``pin``) and exec; raise if it could not."""
        env_lines = "".join(f"{key}={value}\0" for key, value in extra_env.items())
        message = f"go {'1' if pin else '0'} {format_cpulist(cpus)}\0{env_lines}"
        os.write(self._go, message.encode())
        os.close(self._go)
        failure = _read_all(self._errors)
        os.close(self._errors)
        if failure:
            self._wait_quietly()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
            code, _, message = failure.partition(" ")
            error = ProcessError(message)
            error.exit_code = int(code) if code in ("1", "126", "127") else 1
            raise error

    def wait(self, grace: float) -> int:
        """Forward signals to the workload, wait until no process of it is left; the
        main process's exit status. What outlives the main process gets SIGTERM, and
        SIGKILL ``grace`` seconds later."""
        def forward(signum, _frame):
            self.signal_all(signum)

        def expire(_signum, _frame):
            self.signal_all(signal.SIGKILL)
            signal.setitimer(signal.ITIMER_REAL, KILL_SWEEP)  # again, for late forks

        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, forward)
        signal.signal(signal.SIGALRM, expire)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break  # no descendant left: we adopt every orphan
            if pid == self.pid:
                self._reaped = True
                code = os.waitstatus_to_exitcode(status)
                self._status = code if code >= 0 else 128 - code
                if self.signal_all(signal.SIGTERM) and grace > 0:
                    signal.setitimer(signal.ITIMER_REAL, grace)
                elif grace <= 0:
                    self.signal_all(signal.SIGKILL)
        signal.setitimer(signal.ITIMER_REAL, 0)
        assert self._status is not None
        return self._status

    def signal_all(self, signum: int) -> bool:
        """Send ``signum`` to every process of the workload, once each; whether there
        was any. SIGTERM and SIGKILL after the main process has gone also send SIGCONT,
        so a stopped process can end."""
        # The group keeps its number while any member lives, even after the main
        # process has gone: the kernel gives no new process a PID that names a group.
        group = self.pid if self.own_group else None
        others = [p for p in descendants(os.getpid()) if group is None or p.group != group]
        targets = [] if self._reaped or group is not None else [self.pid]  # in the scan too
        targets += [p.pid for p in others if p.pid not in targets]
        sent = False
        for send in (signum, signal.SIGCONT) if self._reaped else (signum,):
            if group is not None:
                try:
                    os.killpg(group, send)
                    sent = True
                except OSError:
                    pass
            for pid in targets:
                try:
                    os.kill(pid, send)
                    sent = True
                except OSError:
                    pass
        return sent

    def _wait_quietly(self) -> None:
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        self._reaped = True


def descendants(pid: int) -> list[ProcessStat]:
    """Every live process below ``pid`` in this PID namespace's /proc."""
    children: dict[int, list[ProcessStat]] = {}
    for process in all_processes("/proc"):
        children.setdefault(process.parent, []).append(process)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child.pid)
    return found


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _child(executable: str, argv: list[str], proc_root: str,
           report_w: int, go_r: int, error_w: int) -> None:  # pragma: no cover - child
    """In the forked child: report, wait, pin, exec. Never returns."""
    try:
        me = self_stat(proc_root)
        os.write(report_w, f"{me.pid} {me.start}".encode())
    except Exception as error:
        os.write(report_w, str(error).encode(errors="replace"))
        os._exit(1)
    os.close(report_w)
    message = _read_all(go_r)
    if not message.startswith("go "):
        os._exit(1)
    head, *env_items = message.split("\0")
    _, pin, cpu_text = head.split(" ", 2)
    cpus = parse_cpulist(cpu_text)
    env = dict(os.environ)
    env.update(item.split("=", 1) for item in env_items if item)
    if pin == "1":
        problem = _pin(cpus)
        if problem:
            os.write(error_w, f"1 cannot pin to CPUs {cpu_text}: {problem}".encode())
            os._exit(1)
    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    for name in _RESTORED_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    try:
        os.execve(executable, argv, env)
    except OSError as error:
        # Like env(1): 127 when something named is missing (a #! interpreter), else 126.
        code = 127 if error.errno == 2 else 126
        os.write(error_w, f"{code} cannot run {argv[0]}: {error.strerror}".encode())
        os._exit(code)


PIN_WAIT = 5.0
"""How long a workload waits for its container's cpuset to admit its CPUs."""


def _pin(cpus: CpuSet) -> str | None:  # pragma: no cover - runs in the child
    """Pin this process to exactly ``cpus``; None on success, else why not.

    The kernel refuses (EINVAL) CPUs that are all outside the process's cgroup cpuset. A
    container that ``kcm enforce`` confined before this grant gets the granted CPUs back
    within milliseconds of the record being written (it watches the directory), so the
    pin is retried for up to PIN_WAIT seconds before it fails."""
    deadline = None
    while True:
        try:
            os.sched_setaffinity(0, cpus)
            return None
        except OSError as error:
            if error.errno != 22:  # EINVAL: outside the cpuset
                return str(error.strerror)
        import time

        deadline = deadline or time.monotonic() + PIN_WAIT
        if time.monotonic() > deadline:
            return ("they are outside this process's cgroup cpuset (kcm enforce gives a "
                    "container the CPUs it is granted; is it running?)")
        time.sleep(0.005)


def assigned_env(cpus: CpuSet, pool: str, shared: dict[str, CpuSet] | None = None,
                 lists: list[str] | None = None) -> dict[str, str]:
    """What the workload learns of its CPUs, under kcm's names and CMK's (whose mask has
    no ``0x``), so CMK's workloads run unchanged: its own CPUs, and the CPUs of each
    shared pool (``shared``), where its control threads may run while its poll loops
    keep the exclusive ones.

    ``KCM_CPUS_SHARED`` is every shared pool's CPUs; ``KCM_CPUS_<POOL>`` one shared pool's
    (name upper-cased, other characters ``_``); CMK's ``CMK_CPUS_SHARED`` is the pool
    named ``shared``, else ``controlplane`` (kcm's name for it), ``CMK_CPUS_INFRA`` the
    pool ``infra``.

    ``CMK_CPUS_ASSIGNED`` is the names of the CPU lists held (``lists``) joined by commas,
    as CMK wrote it (``0,1`` for lists 0 and 1, where kcm's variable says ``0-1``), when
    the workload has those lists whole."""
    listed, mask = format_cpulist(cpus), format_mask(cpus)
    cmk_listed = listed
    if lists:
        held = sorted((min(listed_cpus), name, listed_cpus)
                      for name, listed_cpus in ((name, parse_cpulist(name)) for name in lists))
        if frozenset().union(*(listed_cpus for _, _, listed_cpus in held)) == cpus:
            cmk_listed = ",".join(name for _, name, _ in held)
    env = {
        "KCM_CPUS_ASSIGNED": listed,
        "KCM_CPUS_ASSIGNED_MASK": mask,
        "KCM_POOL": pool,
        "CMK_CPUS_ASSIGNED": cmk_listed,
        "CMK_CPUS_ASSIGNED_MASK": mask[2:],
    }
    if shared:
        env["KCM_CPUS_SHARED"] = format_cpulist(frozenset().union(*shared.values()))
        for name, pool_cpus in shared.items():
            key = "".join(c if c.isalnum() and c.isascii() else "_" for c in name.upper())
            env[f"KCM_CPUS_{key}"] = format_cpulist(pool_cpus)
        cmk_shared = shared.get("shared", shared.get("controlplane"))
        if cmk_shared is not None:
            env["CMK_CPUS_SHARED"] = format_cpulist(cmk_shared)
        if "infra" in shared:
            env["CMK_CPUS_INFRA"] = format_cpulist(shared["infra"])
    return env

