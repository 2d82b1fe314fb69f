"""``kcm reconcile``: free CPU lists whose tasks are dead, once or every N seconds."""

from __future__ import annotations

from kcm import env, jsontext, log
from kcm.output import emit
from kcm.procfs import Liveness, host_proc_root, is_running
from kcm.state import ConfigDir, conf_dir_from

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse


def reclaim(conf: ConfigDir, root: str) -> list[dict]:
    """One pass: drop dead tasks everywhere; what was freed.

    The lock is held to read the directory (and delete a crash's debris), then to put
    the new ``tasks`` files into place, never for the work between: checking every
    task, writing the new files beside the old, making them durable (one syncfs, which
    waits for whatever else the file system has to write). A CPU list that changed in
    between keeps its new tasks; the next pass sees it afresh."""
    with conf.locked():
        config = conf.load()
        conf.remove_debris()
    changes = []
    freed: dict[tuple[str, str], list[dict]] = {}  # by (pool, CPU list)
    alive = Liveness(root)
    for pool in config.pools.values():
        for cpu_list in pool.cpu_lists.values():
            if cpu_list.unreadable:
                continue  # reported when read; nothing of it is freed
            live = [task for task in cpu_list.tasks if alive(task)]
            for task in live:
                if not is_running(root, task.pid, task.start):
                    pids = "+".join(map(str, alive.holders(task)))
                    log.info(f"pool {pool.name} CPU list {cpu_list.name} stays held: kcm "
                             f"process {task.pid} is gone, its workload runs as {pids}")
            if len(live) == len(cpu_list.tasks):
                continue
            changes.append((pool.name, cpu_list, live))
            freed[pool.name, cpu_list.name] = [
                {"pool": pool.name, "cpus": cpu_list.name, "pid": task.pid}
                for task in cpu_list.tasks if task not in live]
    staged = conf.stage_tasks(changes)
    if not staged:
        return []
    try:
        conf.sync_staged(staged)
        with conf.locked():
            committed = conf.commit_staged(staged)
    except BaseException:
        conf.discard_staged(staged)
        raise
    reclaimed = [entry for change in committed
                 for entry in freed[change.pool, change.cpu_list.name]]
    return sorted(reclaimed, key=lambda entry: (entry["pid"], entry["pool"], entry["cpus"]))


def run(args: argparse.Namespace) -> int:
    conf = ConfigDir(conf_dir_from(args.conf_dir))
    root = host_proc_root()
    interval = args.interval if args.interval is not None else env.reconcile_sleep_time()
    if interval is None:
        report = {"reclaimedCpuLists": reclaim(conf, root)}
        emit(report, args.output, lambda r: [("POOL", "CPU LIST", "DEAD PID")] + [
            (e["pool"], e["cpus"], str(e["pid"])) for e in r["reclaimedCpuLists"]])
        return 0

    def one_pass() -> None:
        if conf.removed():  # kcm uninstall ran on this node: create nothing there
            log.once(f"{conf.path} holds no pools (removed?): waiting for kcm init")
            return
        report = {"reclaimedCpuLists": reclaim(conf, root)}
        print(jsontext.dumps(report), flush=True)

    from kcm.periodic import repeat  # signal (with enum) only for the loop

    return repeat(interval, one_pass, "reconcile pass")


