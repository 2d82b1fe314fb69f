"""Each command's options, defined once (``DEFINITIONS``): argparse builds the parser
from them (help, usage errors, the unusual lines) and ``kcm.quickparse`` reads the usual
lines with them. Not imported by ``kcm isolate`` (``kcm.cli`` reads its options)."""

from __future__ import annotations

from kcm import __version__, env
from kcm.names import (
    CRASH_AT_VARIABLE,
    DEFAULT_CONF_DIR,
    DEFAULT_IMAGE,
    DEFAULT_INSTALL_DIR,
    DEFAULT_NAMESPACE,
    GROUP,
    KUBELET_CPU_MANAGER_STATE,
    NODE_LABEL,
    NODE_SELECTOR,
)

STRATEGIES = ("packed", "spread")
LAYOUTS = ("flat", "sockets")


def _type_error(message: str) -> Exception:
    """What an argparse type raises (argparse is imported only when a value is bad)."""
    import argparse

    return argparse.ArgumentTypeError(message)


def _checked(check, *args):
    """An argparse type from a ``kcm.inputs`` check: its error becomes a usage error."""
    from kcm.errors import InputError

    def convert(text: str):
        try:
            return check(text, "the value", *args)
        except InputError as error:
            raise _type_error(str(error).replace("the value ", "")) from None

    convert.__name__ = check.__name__
    return convert


def _count(text: str) -> int:
    from kcm.inputs import whole_number

    return _checked(whole_number)(text)


def _seconds(text: str) -> float:
    from kcm.inputs import seconds

    return _checked(seconds)(text)


def _namespace(text: str) -> str:
    from kcm.inputs import dns_label

    return _checked(dns_label)(text)


def _domain(text: str) -> str:
    from kcm.inputs import dns_subdomain

    if "." not in text:
        raise _type_error(
            f"must be a domain with a dot (a resource name prefix like kcm.dev), not {text!r}")
    return _checked(dns_subdomain)(text)


def _conf_dir(parser) -> None:
    parser.add_argument("--conf-dir", metavar="DIR",
                        help="configuration directory "
                             f"(default $KCM_CONF_DIR or {DEFAULT_CONF_DIR})")


def _node_name(parser) -> None:
    parser.add_argument("--node-name", metavar="NAME",
                        help="this node's name in the cluster (default $NODE_NAME)")


def _resource_prefix(parser) -> None:
    parser.add_argument("--resource-prefix", type=_domain, default=GROUP, metavar="DOMAIN",
                        help=f"domain of the extended resources (default {GROUP})")


def _install_dir(parser) -> None:
    parser.add_argument("--install-dir", default=DEFAULT_INSTALL_DIR, metavar="DIR",
                        help="where the self-contained kcm binary lives "
                             f"(default {DEFAULT_INSTALL_DIR})")


def _image(text: str) -> str:
    if not text.strip() or any(c.isspace() for c in text):
        raise _type_error(f"must be a container image reference, not {text!r}")
    return text


FORMATS = ("table", "json", "yaml")


def _output(parser, default: str | None, formats: tuple[str, ...] = FORMATS) -> None:
    """``-o/--output``, the same on every command (kcm.output prints it); a default of
    None is table on a terminal and json otherwise."""
    said = "table on a terminal, json otherwise" if default is None else default
    parser.add_argument("-o", "--output", choices=formats, default=default,
                        help=f"output format (default: {said})")


def _port(text: str) -> int:
    from kcm.inputs import whole_number

    return _checked(whole_number, 1, 65535)(text)


def _label(text: str) -> str:
    key, equals, value = text.partition("=")
    if not equals or not key or not value:
        raise _type_error(f"expected LABEL=VALUE, got {text!r}")
    return text


def _deploy_options(parser) -> None:
    """The options shared by ``manifests`` and ``cluster-init``."""
    parser.add_argument("--namespace", type=_namespace, default=DEFAULT_NAMESPACE,
                        help=f"namespace of kcm's objects (default {DEFAULT_NAMESPACE})")
    parser.add_argument("--image", type=_image, default=DEFAULT_IMAGE, metavar="IMAGE",
                        help=f"kcm container image (default {DEFAULT_IMAGE})")
    parser.add_argument("--conf-dir", default=DEFAULT_CONF_DIR, metavar="DIR",
                        help=f"configuration directory on the hosts (default {DEFAULT_CONF_DIR})")
    _install_dir(parser)
    parser.add_argument("--num-dp-cores", type=_count, default=4, metavar="N",
                        help="physical cores in each node's exclusive dataplane pool "
                             "(kcm init on the nodes; default 4)")
    parser.add_argument("--num-cp-cores", type=_count, default=1, metavar="N",
                        help="physical cores in each node's shared controlplane pool (default 1)")
    parser.add_argument("--dp-mode", choices=STRATEGIES, default="packed",
                        help="dataplane placement, as kcm init's (default packed)")
    parser.add_argument("--cp-mode", choices=STRATEGIES, default="packed",
                        help="controlplane placement, as kcm init's (default packed)")
    parser.add_argument("--reconcile-interval", type=_seconds, default=30.0, metavar="SECONDS",
                        help="seconds between reconcile (and enforce) passes on the nodes "
                             "(default 30)")
    parser.add_argument("--report-interval", type=_seconds, default=60.0, metavar="SECONDS",
                        help="seconds between node reports (default 60)")
    selector = "=".join(NODE_SELECTOR)
    parser.add_argument("--node-selector", type=_label, default=selector,
                        metavar="LABEL=VALUE", help=f"nodes that run kcm (default {selector})")
    _resource_prefix(parser)
    parser.add_argument("--taint", action="store_true",
                        help=f"taint kcm nodes {NODE_LABEL}=true:NoSchedule")
    parser.add_argument("--no-webhook", action="store_true",
                        help="leave out the admission webhook")
    parser.add_argument("--node-resource-topology", action="store_true",
                        help="publish each node's NodeResourceTopology for the topology-aware "
                             "scheduler (adds its CRD unless the cluster has one, and the "
                             "role to write it)")
    parser.add_argument("--webhook-cert-dir", metavar="DIR",
                        help="keep the webhook's CA and certificate here and reuse them "
                             "(default: mint new ones)")


def _environment_help() -> str:
    import textwrap

    lines = ["environment:"]
    for name, meaning in env.VARIABLES.items():
        if name != CRASH_AT_VARIABLE:
            lines += textwrap.wrap(meaning, 76, initial_indent=f"  {name}: ",
                                   subsequent_indent="      ")
    lines += ["", "Options go after the command's name (kcm isolate --pool=P -- CMD); "
              "for isolate,", "everything from CMD on belongs to CMD."]
    return "\n".join(lines)


def _define_init(parser) -> None:
    _conf_dir(parser)
    parser.add_argument("--exclusive-pool-name", default="dataplane", metavar="NAME",
                        help="name of the exclusive pool (default dataplane; the cmk command "
                             "names it exclusive, as CMK did)")
    parser.add_argument("--shared-pool-name", default="controlplane", metavar="NAME",
                        help="name of the shared pool (default controlplane; shared for cmk)")
    parser.add_argument("--num-dp-cores", type=_count, default=4, metavar="N",
                      help="physical cores in the exclusive dataplane pool (default 4)")
    parser.add_argument("--num-cp-cores", type=_count, default=1, metavar="N",
                      help="physical cores in the shared controlplane pool (default 1)")
    parser.add_argument("--dp-mode", choices=STRATEGIES, default="packed",
                      help="packed: as few NUMA nodes as possible; spread: across NUMA nodes "
                           "(default packed)")
    parser.add_argument("--cp-mode", choices=STRATEGIES, default="packed",
                      help="as --dp-mode, for the controlplane pool (default packed)")
    parser.add_argument("--layout", choices=LAYOUTS, default="flat",
                        help="flat: pools/<pool>/<cpulist> (the original KCM's); sockets: "
                             "pools/<pool>/<socket>/<cpulist>, CMK v1.4.1's, with a shared "
                             "list split per socket (default flat; sockets for cmk init)")


def _define_describe(parser) -> None:
    _conf_dir(parser)
    parser.add_argument("-o", "--output", choices=FORMATS, default="json",
                          help="json: the original KCM's document (with deadTasks when a "
                               "kcm process is gone); yaml: the same; table: for people "
                               "(default json)")


def _define_reconcile(parser) -> None:
    _conf_dir(parser)
    parser.add_argument("--interval", type=_seconds, metavar="SECONDS",
                           help="repeat every SECONDS until SIGTERM, one JSON line per pass "
                                "(default $KCM_RECONCILE_SLEEP_TIME, else run once)")
    _output(parser, None)


def _cgroup_root(parser) -> None:
    parser.add_argument("--cgroup-root", metavar="DIR",
                        help="the cgroup directory whose leaf cgroups are the containers "
                             "(default $KCM_CGROUP_ROOT, else the kubelet's kubepods.slice "
                             "or kubepods under the cpuset hierarchy, found in "
                             "/proc/self/mountinfo)")


def _define_enforce(parser) -> None:
    _conf_dir(parser)
    _cgroup_root(parser)
    parser.add_argument("--interval", type=_seconds, metavar="SECONDS",
                         help="repeat every SECONDS until SIGTERM, and at once when a CPU "
                              "list is taken or given back (default: run once)")
    parser.add_argument("--steer-irqs", action="store_true",
                         help="also move interrupts off held exclusive CPUs, and back on "
                              "release (default: leave interrupts alone)")
    _output(parser, "json", ("json", "yaml"))


def _define_discover(parser) -> None:
    _conf_dir(parser)
    _node_name(parser)
    _resource_prefix(parser)
    parser.add_argument("--taint", action="store_true",
                          help=f"also taint the node {NODE_LABEL}=true:NoSchedule")
    _output(parser, None)


def _define_node_report(parser) -> None:
    _conf_dir(parser)
    _node_name(parser)
    parser.add_argument("--publish", action="store_true",
                        help="create or update the node's NodeReport custom resource")
    parser.add_argument("--node-resource-topology", action="store_true",
                        help="with --publish, also publish the node's NodeResourceTopology "
                             "(per-NUMA zones of the pool resources)")
    _resource_prefix(parser)
    parser.add_argument("--interval", type=_seconds, metavar="SECONDS",
                        help="repeat every SECONDS until SIGTERM")
    parser.add_argument("--metrics-port", type=_port, metavar="PORT",
                        help="serve Prometheus metrics on /metrics at this port")
    parser.add_argument("--metrics-address", default="", metavar="ADDRESS",
                        help="address for the metrics server (default: all)")
    _cgroup_root(parser)
    _output(parser, "json", ("json", "yaml"))


def _define_install(parser) -> None:
    _install_dir(parser)
    parser.add_argument("--from", dest="source", metavar="DIR",
                         help="the kcm bundle to install (default $KCM_BUNDLE_DIR, this "
                              "binary's own bundle, or /usr/local/share/kcm/bundle; when "
                              "none exists, one is built from the running Python)")
    _output(parser, None)


def _define_manifests(parser) -> None:
    _deploy_options(parser)
    parser.add_argument("--only", choices=("init-pod", "discover-pod", "reconcile"),
                           help="only the operator manual's Pod template for one step")


def _define_cluster_init(parser) -> None:
    hosts = parser.add_mutually_exclusive_group(required=True)
    hosts.add_argument("--host-list", metavar="NODE,NODE", help="the nodes to set up")
    hosts.add_argument("--all-hosts", action="store_true", help="set up every node")
    _deploy_options(parser)
    parser.add_argument("--dry-run", action="store_true",
                              help="print what would be applied and change nothing")
    parser.add_argument("--timeout", type=_seconds, default=600.0, metavar="SECONDS",
                              help="how long to wait for the nodes (default 600)")


def _define_webhook(parser) -> None:
    parser.add_argument("--tls-cert-file", required=True, metavar="FILE",
                         help="PEM certificate the webhook serves (required)")
    parser.add_argument("--tls-private-key-file", required=True, metavar="FILE",
                         help="PEM private key of that certificate (required)")
    parser.add_argument("--secure-port", type=_port, default=8443, metavar="PORT",
                         help="HTTPS port (default 8443)")
    parser.add_argument("--bind-address", default="0.0.0.0", metavar="ADDRESS",
                         help="address to listen on (default 0.0.0.0: all)")
    parser.add_argument("--conf-dir", default=DEFAULT_CONF_DIR, metavar="DIR",
                         help="configuration directory on the hosts, mounted into workloads "
                              f"(default {DEFAULT_CONF_DIR})")
    _install_dir(parser)
    _resource_prefix(parser)


def _define_doctor(parser) -> None:
    _conf_dir(parser)
    _node_name(parser)
    _install_dir(parser)
    _resource_prefix(parser)
    parser.add_argument("-o", "--output", choices=(*FORMATS, "text"), default="table",
                        help="table (or text): findings and fixes for people; json, yaml: "
                             "for tools (default table)")
    parser.add_argument("--kubelet-state", metavar="FILE",
                        help="the kubelet's CPU manager checkpoint (default "
                             f"$KCM_KUBELET_STATE, else {KUBELET_CPU_MANAGER_STATE})")
    _cgroup_root(parser)
    parser.add_argument("--report-max-age", type=_seconds, default=600.0, metavar="SECONDS",
                        help="how old the NodeReport may be (default 600)")


def _define_uninstall(parser) -> None:
    _conf_dir(parser)
    _install_dir(parser)
    _node_name(parser)
    _resource_prefix(parser)
    parser.add_argument("--force", action="store_true",
                           help="uninstall even while kcm tasks are running")
    _output(parser, None)


def _define_isolate(parser) -> None:
    # nargs "..." is argparse.REMAINDER (argparse is not imported to define options)
    _conf_dir(parser)
    parser.add_argument("--pool", required=True, help="pool to take CPUs from")
    parser.add_argument("--num-cores", type=_count, metavar="N",
                         help="CPU lists to take from an exclusive pool "
                              "(default $KCM_NUM_CORES, else 1)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket-id", type=_count, metavar="N", help="only CPUs of this socket")
    where.add_argument("--numa-node", type=_count, metavar="N", help="only CPUs of this NUMA node")
    parser.add_argument("--no-affinity", action="store_true",
                         help="do not pin; only set KCM_CPUS_ASSIGNED for the command")
    parser.add_argument("--with-shared", action="store_true",
                         help="pin to the granted CPUs plus every shared pool's, for a "
                              "workload that pins its own threads (poll loops on "
                              "KCM_CPUS_ASSIGNED, control threads on KCM_CPUS_SHARED); "
                              "default: the granted CPUs only")
    parser.add_argument("command_argv", nargs="...", metavar="COMMAND [ARGS...]",
                         help="the command to run, without a shell. kcm's options come "
                              "before it: everything from COMMAND on (or after --) is the "
                              "command's, so `kcm isolate --pool=p sleep 1 --num-cores=2` "
                              "passes --num-cores=2 to sleep")


# Each command's options, defined once for argparse and kcm.quickparse alike.
DEFINITIONS = {
    "init": _define_init,
    "describe": _define_describe,
    "reconcile": _define_reconcile,
    "enforce": _define_enforce,
    "discover": _define_discover,
    "node-report": _define_node_report,
    "install": _define_install,
    "manifests": _define_manifests,
    "cluster-init": _define_cluster_init,
    "webhook": _define_webhook,
    "doctor": _define_doctor,
    "uninstall": _define_uninstall,
    "isolate": _define_isolate,
}


def parser(commands: dict[str, tuple[str, str]]):
    """The argparse parser of ``commands`` (name -> (module, summary)), in their order."""
    import argparse

    top = argparse.ArgumentParser(
        prog="kcm", description="kcm: a CPU manager for Kubernetes nodes.",
        epilog=_environment_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"kcm {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, summary) in commands.items():
        DEFINITIONS[name](sub.add_parser(name, help=summary, description=summary))
    return top
