"""``kcm init``: lay out the pools for this node in a new configuration directory."""

from __future__ import annotations

from kcm import log
from kcm.allocate import plan_pools, split_by_socket
from kcm.cpuset import format_cpulist
from kcm.env import read_node_topology
from kcm.errors import InputError
from kcm.model import valid_pool_name
from kcm.state import ConfigDir, conf_dir_from

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse


def run(args: argparse.Namespace) -> int:
    topology = read_node_topology()
    for warning in topology.warnings:
        log.warning(warning)
    plans = plan_pools(topology, args.num_dp_cores, args.num_cp_cores, args.dp_mode, args.cp_mode)
    names = {"dataplane": args.exclusive_pool_name, "controlplane": args.shared_pool_name}
    plans = [plan._replace(name=names.get(plan.name, plan.name)) for plan in plans]
    if len({plan.name for plan in plans}) < len(plans):
        raise InputError(f"pool names must differ: {', '.join(p.name for p in plans)}")
    for plan in plans:
        if not valid_pool_name(plan.name):
            raise InputError(f"{plan.name!r} is not a valid pool name")
    unused = topology.isolated - frozenset().union(*(cpus for plan in plans
                                                     for cpus in plan.cpu_lists))
    if unused and topology.isolated_cores():
        log.warning(f"isolated CPUs {format_cpulist(unused)} are in no pool: nothing runs there "
                    "(more are isolated than --num-dp-cores and --num-cp-cores take)")
    sockets = None
    if args.layout == "sockets":
        plans = [split_by_socket(plan, topology) for plan in plans]
        sockets = {cpu.id: cpu.socket for cpu in topology.cpus.values()}
    conf = ConfigDir(conf_dir_from(args.conf_dir))
    created = conf.create([(plan.name, plan.exclusive, list(plan.cpu_lists)) for plan in plans],
                          sockets)
    if not created:
        log.info(f"{conf.path} already holds these pools; nothing to do")
        return 0
    for plan in plans:
        lists = " ".join(format_cpulist(cpus) for cpus in plan.cpu_lists)
        kind = "exclusive" if plan.exclusive else "shared"
        log.info(f"pool {plan.name} ({kind}): {lists}")
    return 0
