"""``kcm doctor``: check this node the way an experienced operator would."""

import os
import time

from kcm import __version__, env
from kcm.doctor import ClusterFacts, Facts, InstallFacts, as_document, as_text, diagnose, healthy
from kcm.env import read_node_topology
from kcm.errors import KcmError
from kcm.install import LINK, linked_version
from kcm.node_facts import enforcement_status, host_processes, read_config
from kcm.output import emit
from kcm.procfs import host_proc_root
from kcm.state import ConfigDir, conf_dir_from


def installed(install_dir: str) -> InstallFacts:
    """The installed binary's version: read from the bundle ``kcm install`` linked, or,
    for anything else at that path, from running it with ``--version``."""
    path = os.path.join(install_dir, LINK)
    try:
        version = linked_version(install_dir)
    except KcmError as error:
        return InstallFacts(path, error=str(error))
    if version is not None:
        return InstallFacts(path, version=version)
    if not os.path.exists(path):
        return InstallFacts(path, error=f"{path} does not exist")
    import subprocess

    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as error:
        return InstallFacts(path, error=f"cannot run {path}: {error.strerror}")
    except subprocess.TimeoutExpired:
        return InstallFacts(path, error=f"{path} --version did not answer in 30 s")
    words = result.stdout.split()
    if result.returncode != 0 or len(words) != 2 or words[0] != "kcm":
        return InstallFacts(path, error=f"{path} --version failed: {result.stderr.strip()[:200]}")
    return InstallFacts(path, version=words[1])


def cluster_facts(name: str | None) -> ClusterFacts | None:
    name = name or env.node_name(None)
    if not name:
        return None
    try:
        from kcm.k8s import NODE, NODE_REPORT, KubeClient

        client = KubeClient()
        return ClusterFacts(node=client.get(NODE, name), report=client.get(NODE_REPORT, name))
    except KcmError as error:
        return ClusterFacts(error=str(error))


def run(args) -> int:
    conf = ConfigDir(conf_dir_from(args.conf_dir))
    config, error = read_config(conf)
    state_path = env.kubelet_state(args.kubelet_state)
    try:
        with open(state_path) as handle:
            kubelet_state = handle.read(1 << 20)
    except OSError:
        kubelet_state = None
    facts = Facts(
        topology=read_node_topology(), config=config, config_error=error,
        processes=host_processes(host_proc_root()),
        install=installed(args.install_dir), conf_dir=conf.path,
        kubelet_state=kubelet_state, kubelet_state_path=state_path,
        cluster=cluster_facts(args.node_name), node_name=args.node_name or
        env.node_name(None), resource_prefix=args.resource_prefix,
        report_max_age=args.report_max_age, now=time.time(), version=__version__,
        enforcement=enforcement_status(conf, args.cgroup_root),
    )
    findings = diagnose(facts)
    if args.output in ("table", "text"):
        print(as_text(findings))
    else:
        emit(as_document(findings), args.output)
    return 0 if healthy(findings) else 1
