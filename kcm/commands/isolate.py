"""``kcm isolate``: take CPU lists from a pool, run the command pinned to them, give
them back when it exits. Imports only the standard library and kcm's small modules."""

import os

from kcm import env, log
from kcm.cpuset import CpuSet, format_cpulist
from kcm.env import read_cpu_siblings, read_node_topology
from kcm.errors import KcmError
from kcm.model import Task, split_place
from kcm.names import NUM_CORES_VARIABLE
from kcm.procfs import Liveness, host_proc_root, self_stat
from kcm.selection import Request, grant, lists_overlapping, release, shared_pools
from kcm.state import ConfigDir, conf_dir_from
from kcm.supervise import Workload, assigned_env, find_executable, shell_form


def run(args) -> int:
    command = shell_form(args.command_argv)
    executable = find_executable(command[0])
    grace = env.stop_grace()
    request = Request(
        pool=args.pool,
        num_cores=args.num_cores if args.num_cores is not None else env.num_cores() or 1,
        explicit_num_cores=args.num_cores is not None,
        socket=args.socket_id,
        numa_node=args.numa_node,
    )
    conf = ConfigDir(conf_dir_from(args.conf_dir))
    root = host_proc_root()
    me = self_stat(root)
    workload = Workload(executable, command, root)
    try:
        task = Task(me.pid, me.start, workload.host_pid, workload.host_start)
        cpus, held = _acquire(conf, request, task, root)
    except BaseException:
        workload.abandon()
        raise
    overview = conf.pools_overview(own=args.pool)
    shared_with = lists_overlapping(overview, args.pool, cpus)
    if shared_with:
        log.warning(f"CPUs {format_cpulist(cpus)} of pool {args.pool} are also in "
                    f"{', '.join(shared_with)}: not exclusive")
    shared = shared_pools(overview)
    pinned = cpus.union(*shared.values()) if args.with_shared else cpus
    try:
        names = [split_place(place)[1] for place in held]
        workload.start(pinned, not args.no_affinity, assigned_env(cpus, args.pool, shared, names))
    except KcmError:
        _release(conf, args.pool, held, task)
        raise
    # This process is the PID describe shows: pinned with its workload, it tells the
    # truth to `taskset -p`; it only sleeps in waitpid there. It leaves the CPUs before
    # giving them back, so no process of ours is on them once another task may be.
    own = os.sched_getaffinity(0)
    if not args.no_affinity:
        _set_affinity(pinned)
    status = workload.wait(grace)
    _set_affinity(own)
    _release(conf, args.pool, held, task)
    return status


def _set_affinity(cpus: CpuSet) -> None:
    try:
        os.sched_setaffinity(0, cpus)
    except OSError:
        pass  # outside our cpuset: the workload is pinned, the supervisor stays as it is


def _acquire(conf: ConfigDir, request: Request, task: Task, root: str) -> tuple[CpuSet, list[str]]:
    """Under the lock: choose CPU lists, record the task in each; (CPUs, list names)."""
    with conf.locked():
        cpus, held, reclaimed = grant(conf, request, task, Liveness(root),
                                      read_node_topology, read_cpu_siblings)
    for name in reclaimed:
        log.info(f"reclaimed pool {request.pool} CPU list {name} from dead tasks")
    if request.num_cores > 1 and not request.explicit_num_cores and len(held) == 1:
        log.warning(f"{NUM_CORES_VARIABLE}={request.num_cores} is ignored: pool {request.pool} is "
                    "shared (one CPU list per task)")
    return cpus, held


def _release(conf: ConfigDir, pool_name: str, held: list[str], task: Task) -> None:
    """Give the CPU lists back; a failure is reported, reconcile will free them."""
    try:
        with conf.locked():
            release(conf, pool_name, held, task)
    except KcmError as error:
        log.warning(f"could not release CPU lists {', '.join(held)} of pool {pool_name}: "
                    f"{error} (kcm reconcile will free them)")
