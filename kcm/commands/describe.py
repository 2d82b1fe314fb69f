"""``kcm describe``: the configuration directory as JSON (default) or a table."""

import argparse
import json

from kcm.cpuset import format_cpulist
from kcm.env import read_node_topology
from kcm.errors import TopologyError
from kcm.report import config_as_dict
from kcm.state import ConfigDir, conf_dir_from


def run(args: argparse.Namespace) -> int:
    conf = ConfigDir(conf_dir_from(args.conf_dir))
    with conf.locked(shared=True):
        config = conf.load()
    if args.output == "json":
        print(json.dumps(config_as_dict(config), sort_keys=True, indent=2))
        return 0
    try:
        numa_of = {cpu.id: cpu.numa for cpu in read_node_topology().cpus.values()}
    except TopologyError:
        numa_of = {}
    rows = [("POOL", "EXCLUSIVE", "CPU LIST", "NUMA NODE", "TASKS")]
    for pool in sorted(config.pools.values(), key=lambda pool: pool.name):
        for cpu_list in sorted(pool.cpu_lists.values(), key=lambda cl: min(cl.cpus)):
            nodes = {numa_of.get(cpu) for cpu in cpu_list.cpus}
            rows.append((
                pool.name,
                "yes" if pool.exclusive else "no",
                cpu_list.name,
                "?" if None in nodes else format_cpulist(nodes),
                ",".join(str(task.pid) for task in cpu_list.tasks) or "-",
            ))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0
