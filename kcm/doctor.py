"""``kcm doctor``'s checks: each a verdict, what is wrong, and the command that fixes it.

Pure functions over facts gathered by the command (topology, configuration, processes,
the installed binary, the node as the API server sees it, the kubelet's CPU manager
checkpoint).
"""

from __future__ import annotations

from collections import namedtuple

from kcm.cpuset import format_cpulist, parse_cpulist
from kcm.errors import ConfigMissing, CpuListError, KcmError, LockTimeout
from kcm.names import GROUP, NODE_LABEL
from kcm.node_patch import advertised, has_label, wanted_capacity
from kcm.node_report import build_report


# Named tuples rather than dataclasses: importing ``dataclasses`` (with ``inspect``)
# would cost kcm doctor more CPU than all its checks.
class Finding(namedtuple("Finding", "name ok detail fix severity ran",
                         defaults=("", "error", True))):
    """One check's verdict: ``fix`` the command that repairs it; ``severity`` "error",
    or "warning" (reported, but the node counts as healthy); ``ran`` False when the
    check could not run (never reported as ok)."""

    __slots__ = ()


def _not_run(name: str) -> Finding:
    return Finding(name, False, "not run: the configuration directory could not be read",
                   severity="warning", ran=False)


class ClusterFacts(namedtuple("ClusterFacts", "node report error", defaults=(None,) * 3)):
    """What the API server says about this node (the Node and its NodeReport, dicts or
    None); ``error`` when it could not be asked."""

    __slots__ = ()


class InstallFacts(namedtuple("InstallFacts", "path version error", defaults=(None, None))):
    """The installed binary at ``path``: its version, or ``error``."""

    __slots__ = ()


class Facts(namedtuple("Facts", (
        "topology config config_error processes install conf_dir kubelet_state "
        "kubelet_state_path cluster node_name resource_prefix report_max_age now version "
        "enforcement"), defaults=(None, "", None, None, GROUP, 600.0, 0.0, "", None))):
    """Everything the checks look at: ``topology`` (Topology), ``config`` (Config, or
    None with ``config_error``), ``processes`` (Processes), ``install`` (InstallFacts),
    the kubelet's checkpoint text (None: no file), ``cluster`` (ClusterFacts, None: no
    node name), ``enforcement`` (what ``kcm enforce`` achieved)."""

    __slots__ = ()


FIXES = {
    "disjointCpuLists": "rm -r {conf} && kcm init --conf-dir={conf} (no tasks running)",
    "exclusiveOnIsolated": "re-run kcm init so exclusive pools come from isolcpus= cores",
    "cpusOnline": "the machine changed: kcm uninstall --conf-dir={conf}, then kcm init",
    "cpusInPools": "informational: grow the pools with kcm init, or leave the CPUs idle",
    "deadTasks": "kcm reconcile --conf-dir={conf}",
    "affinity": "restart the workload through kcm isolate (something re-pinned it)",
}


def diagnose(facts: Facts) -> list[Finding]:
    conf = facts.conf_dir
    error = facts.config_error
    report = build_report(facts.topology, facts.config, error and str(error), facts.processes)
    # A task whose process is gone keeps its CPU list from new workloads until the
    # next reconcile: for the doctor that is a problem to fix, not just information.
    severity = {"deadTasks": "error"}
    fixes = {**FIXES, "configDirectory": config_fix(error)}
    findings = [
        Finding(check["name"], check["ok"], "; ".join(check["errors"]) or "ok",
                fixes[check["name"]].format(conf=conf) if check["ok"] is False
                and check["ran"] else "",
                severity.get(check["name"], check["severity"]) if check["ran"] else "warning",
                check["ran"])
        for check in report["checks"]
    ]
    findings.append(_whole_cores(facts))
    findings.append(_isolcpus(facts))
    findings.append(_enforcement(facts))
    findings.append(_installed(facts))
    findings.append(_kubelet(facts))
    findings += _cluster(facts)
    return findings


def config_fix(error: KcmError | None) -> str:
    """Advice that fits why the directory could not be read, and never destroys the
    records of running workloads."""
    if isinstance(error, LockTimeout):
        return ("another kcm process holds {conf}/lock: wait and run again "
                "(fuser {conf}/lock names the holder)")
    if isinstance(error, ConfigMissing):
        return "kcm init --conf-dir={conf}"
    return ("repair or remove the entry named above by hand; keep every tasks file, "
            "which records running workloads (re-initialising would free their CPUs)")


def healthy(findings: list[Finding]) -> bool:
    return all(f.ok or f.severity != "error" for f in findings)


def as_document(findings: list[Finding]) -> dict:
    return {"healthy": healthy(findings), "checks": [f._asdict() for f in findings]}


def as_text(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        mark = "ok  " if finding.ok else ("SKIP" if not finding.ran else
                                          "WARN" if finding.severity == "warning" else "FAIL")
        lines.append(f"{mark}  {finding.name}: {finding.detail}")
        if not finding.ok and finding.fix:
            lines.append(f"      fix: {finding.fix}")
    lines.append("healthy" if healthy(findings) else "UNHEALTHY")
    return "\n".join(lines)


def _whole_cores(facts: Facts) -> Finding:
    if facts.config is None:
        return _not_run("exclusiveWholeCores")
    cores = {cpu: core for core in facts.topology.cores().values() for cpu in core}
    split = [f"{pool.name}/{cpu_list.name}" for pool in facts.config.pools.values()
             if pool.exclusive for cpu_list in pool.cpu_lists.values()
             if any(cores.get(cpu, frozenset()) - cpu_list.cpus for cpu in cpu_list.cpus)]
    if split:
        return Finding("exclusiveWholeCores", False,
                       f"exclusive CPU lists share a physical core with other work: "
                       f"{', '.join(split)}", "re-run kcm init (one whole core per CPU list)",
                       "warning")
    return Finding("exclusiveWholeCores", True, "every exclusive CPU list is whole cores")


def _isolcpus(facts: Facts) -> Finding:
    if facts.config is None:
        return _not_run("isolcpus")
    exclusive = frozenset().union(*(cpu_list.cpus for pool in facts.config.pools.values()
                                    if pool.exclusive for cpu_list in pool.cpu_lists.values()))
    if not exclusive:
        return Finding("isolcpus", True, "no exclusive pools")
    if not facts.topology.isolated:
        return Finding("isolcpus", False,
                       "no CPUs are isolated from the scheduler: exclusive workloads share "
                       "their CPUs with kernel threads and unpinned processes",
                       f"boot with isolcpus={format_cpulist(exclusive)} (or a tuned profile), "
                       "then re-run kcm init", "warning")
    outside = exclusive - facts.topology.isolated
    if outside:
        return Finding("isolcpus", False,
                       f"exclusive CPUs not isolated: {format_cpulist(outside)}",
                       "re-run kcm init so exclusive pools come from isolated cores")
    return Finding("isolcpus", True,
                   f"exclusive pools on isolated CPUs ({format_cpulist(exclusive)})")


def _enforcement(facts: Facts) -> Finding:
    status = facts.enforcement or {}
    fix = "run kcm enforce --interval=30 (the enforce container of the kcm-node DaemonSet)"
    if not status.get("available"):
        return Finding("enforcement", False, f"not run: {status.get('reason', 'unknown')}",
                       severity="warning", ran=False)
    loose = status["containersNotConfined"]
    if loose or status["violations"]:
        return Finding("enforcement", False,
                       f"{len(loose)} containers may run on CPUs another task holds; "
                       f"{len(status['violations'])} threads in violation", fix)
    detail = (f"{status['containers']} containers kept off held CPUs "
              f"({status['held'] or 'none held'}); {len(status['irqsSteered'])} IRQs steered")
    if status["irqsOnHeldCpus"]:
        return Finding("enforcement", False, f"{detail}; IRQs still on held CPUs: "
                       f"{', '.join(status['irqsOnHeldCpus'][:10])}",
                       "kcm enforce --steer-irqs (managed IRQs cannot move: see node-report)",
                       "warning")
    return Finding("enforcement", True, detail)


def _installed(facts: Facts) -> Finding:
    install = facts.install
    fix = f"kcm install --install-dir={install.path.rsplit('/', 1)[0]}"
    if install.error:
        return Finding("installedBinary", False, install.error, fix)
    if install.version != facts.version:
        return Finding("installedBinary", False,
                       f"{install.path} is kcm {install.version}, this is kcm {facts.version}",
                       fix)
    return Finding("installedBinary", True, f"{install.path} is kcm {install.version}")


def _kubelet(facts: Facts) -> Finding:
    name = "kubeletCpuManager"
    if facts.kubelet_state is None:
        return Finding(name, True, f"no kubelet CPU manager state at {facts.kubelet_state_path}")
    import json  # only with a checkpoint to read (json imports re)

    try:
        state = json.loads(facts.kubelet_state)
        policy = state.get("policyName", "none")
        entries = state.get("entries") or {}
    except (ValueError, AttributeError):
        return Finding(name, False, f"{facts.kubelet_state_path} is not valid JSON",
                       "check the kubelet", "warning")
    if policy == "static" and facts.config is None:
        return _not_run(name)
    if policy != "static":
        return Finding(name, True, f"kubelet CPU manager policy {policy!r}")
    exclusive = frozenset().union(*(cpu_list.cpus for pool in facts.config.pools.values()
                                    if pool.exclusive for cpu_list in pool.cpu_lists.values()))
    clashes = []
    for pod, containers in entries.items():
        for container, text in (containers or {}).items():
            try:
                cpus = parse_cpulist(str(text))
            except CpuListError:
                continue
            if cpus & exclusive:
                clashes.append(f"pod {pod} container {container} on "
                               f"{format_cpulist(cpus & exclusive)}")
    if clashes:
        return Finding(name, False,
                       "the kubelet's static CPU manager gave kcm's exclusive CPUs to other "
                       f"containers: {'; '.join(clashes)}",
                       "add kcm's exclusive CPUs to the kubelet's reservedSystemCPUs, or "
                       "run the kubelet with --cpu-manager-policy=none")
    return Finding(name, True, "the kubelet's static CPU manager keeps off kcm's exclusive CPUs")


def _cluster(facts: Facts) -> list[Finding]:
    cluster = facts.cluster
    if cluster is None:
        return [Finding("cluster", True, "no node name or API access: cluster checks skipped",
                        severity="warning")]
    if cluster.error:
        return [Finding("cluster", False, cluster.error, "check the kubeconfig or RBAC")]
    if cluster.node is None:
        return [Finding("cluster", False, f"node {facts.node_name} not found in the cluster",
                        "pass --node-name (or NODE_NAME) as the node is named in the cluster")]
    findings = []
    wanted = {}
    if facts.config is not None:
        wanted = wanted_capacity(facts.config, facts.resource_prefix)
    on_node = advertised(cluster.node, facts.resource_prefix)
    if on_node != wanted:
        findings.append(Finding("extendedResources", False,
                                f"the node advertises {on_node or 'nothing'}, the pools "
                                f"have {wanted or 'nothing'}", "kcm discover"))
    else:
        findings.append(Finding("extendedResources", True, f"advertised {wanted}"))
    labels = (cluster.node.get("metadata") or {}).get("labels") or {}
    findings.append(Finding("nodeLabel", has_label(cluster.node),
                            f"label {NODE_LABEL}=" + str(labels.get(NODE_LABEL, "(missing)")),
                            "kcm discover"))
    findings.append(_report_fresh(facts))
    return findings


def _report_fresh(facts: Facts) -> Finding:
    import calendar
    import time

    report = facts.cluster.report if facts.cluster else None
    if report is None:
        return Finding("nodeReport", False, "no NodeReport for this node",
                       "kcm node-report --publish (the DaemonSet's node-report container)",
                       "warning")
    stamp = (report.get("status") or {}).get("lastReportTime", "")
    try:
        age = facts.now - calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return Finding("nodeReport", False, f"NodeReport has no valid lastReportTime ({stamp!r})",
                       "kcm node-report --publish", "warning")
    if age > facts.report_max_age:
        return Finding("nodeReport", False, f"the NodeReport is {age:.0f}s old",
                       "check the node-report container of the kcm-node DaemonSet", "warning")
    return Finding("nodeReport", True, f"NodeReport updated {age:.0f}s ago")
