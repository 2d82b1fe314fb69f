"""The command line: each command's options are defined once (``DEFINITIONS``); a
command's module is imported when it runs.

argparse (with ``re``, ``gettext`` and ``shutil``) costs more CPU than a one-shot command
itself, so the usual command lines are read without it: ``kcm isolate`` by a small
parser of its own (it wraps every workload start), the others by ``kcm.quickparse``
from the same definitions. argparse reads the rest and prints help and usage errors.
"""

from __future__ import annotations

import os
import sys

from kcm import __version__, env
from kcm.errors import KcmError
from kcm.names import (
    DEFAULT_CONF_DIR,
    DEFAULT_IMAGE,
    DEFAULT_INSTALL_DIR,
    DEFAULT_NAMESPACE,
    GROUP,
    NODE_LABEL,
    NODE_SELECTOR,
)

TYPE_CHECKING = False  # collections.abc costs ~3 ms on the isolate start-up path
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

STRATEGIES = ("packed", "spread")
LAYOUTS = ("flat", "sockets")

# Subcommands in help order: name -> (module under kcm.commands, summary).
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "create the configuration directory with pools for this node"),
    "discover": ("discover", "advertise exclusive pools as node extended resources"),
    "describe": ("describe", "show pools, CPU lists and tasks"),
    "reconcile": ("reconcile", "free CPU lists held by dead processes"),
    "isolate": ("isolate", "run a command pinned to CPUs taken from a pool"),
    "enforce": ("enforce", "keep other containers and interrupts off held exclusive CPUs"),
    "install": ("install", "put a self-contained kcm binary on the host"),
    "node-report": ("node_report", "report the node's topology, pools and checks"),
    "cluster-init": ("cluster_init", "set up kcm on cluster nodes in one command"),
    "uninstall": ("uninstall", "remove what kcm added to the node"),
    "webhook": ("webhook", "serve the mutating admission webhook"),
    "manifests": ("manifests", "print the Kubernetes manifests for kcm"),
    "doctor": ("doctor", "check this node and say how to fix what is wrong"),
}

# isolate's options that take a value, for splitting its argv from the command.
_ISOLATE_VALUE_OPTIONS = ("--conf-dir", "--pool", "--num-cores", "--socket-id", "--numa-node")


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
        if name != "KCM_CRASH_AT":
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


def _define_enforce(parser) -> None:
    _conf_dir(parser)
    parser.add_argument("--cgroup-root", metavar="DIR",
                         help="the cgroup directory whose leaf cgroups are the containers "
                              "(default: the kubelet's kubepods.slice or kubepods under the "
                              "cpuset hierarchy, found in /proc/self/mountinfo)")
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
    parser.add_argument("--kubelet-state", default="/var/lib/kubelet/cpu_manager_state",
                        metavar="FILE", help="the kubelet's CPU manager checkpoint "
                                             "(default /var/lib/kubelet/cpu_manager_state)")
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


def build_parser():
    """The argparse parser: help, errors, and whatever ``kcm.quickparse`` leaves to it."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="kcm", description="kcm: a CPU manager for Kubernetes nodes.",
        epilog=_environment_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"kcm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, summary) in COMMANDS.items():
        DEFINITIONS[name](sub.add_parser(name, help=summary, description=summary))
    return parser


def split_isolate_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``isolate``'s arguments into its options and the command.

    Options end at the first ``--`` or the first word that is not an option; the
    first ``--`` is dropped wherever it stands, so the manual's
    ``kcm isolate --pool=infra sleep -- inf`` runs ``sleep inf``.
    """
    options: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--" or not word.startswith("-"):
            break
        options.append(word)
        if word in _ISOLATE_VALUE_OPTIONS and index + 1 < len(argv):
            options.append(argv[index + 1])
            index += 1
        index += 1
    command = list(argv[index:])
    if "--" in command:
        command.remove("--")
    return options, command


class Arguments:
    """Parsed arguments, as argparse would set them."""

    def __init__(self, **values: object):
        self.__dict__.update(values)


def fast_isolate_arguments(options: Sequence[str]) -> Arguments | None:
    """Read isolate's options without argparse; None for anything unusual (help,
    abbreviations, bad values, conflicts), which argparse then handles and reports."""
    values: dict[str, object] = {"command": "isolate", "conf_dir": None, "pool": None,
                                 "num_cores": None, "socket_id": None, "numa_node": None,
                                 "no_affinity": False, "with_shared": False}
    words = list(options)
    while words:
        word = words.pop(0)
        if word in ("--no-affinity", "--with-shared"):
            values[word[2:].replace("-", "_")] = True
            continue
        name, equals, value = word.partition("=")
        if name not in _ISOLATE_VALUE_OPTIONS:
            return None
        if not equals:
            if not words:
                return None
            value = words.pop(0)
        key = name[2:].replace("-", "_")
        if key in ("conf_dir", "pool"):
            values[key] = value
        elif value.isascii() and value.isdigit() and len(value) <= 5:
            values[key] = int(value)
        else:
            return None
    if values["pool"] is None or (values["socket_id"] is not None
                                  and values["numa_node"] is not None):
        return None
    return Arguments(**values)


def parse_arguments(argv: Sequence[str]):
    """Arguments for ``argv``; for isolate, ``command_argv`` holds the command (may be [])."""
    if argv and argv[0] == "isolate":
        options, command = split_isolate_argv(argv[1:])
        args = fast_isolate_arguments(options) or build_parser().parse_args(["isolate", *options])
        args.command_argv = command
        return args
    if argv and argv[0] in DEFINITIONS:
        from kcm.quickparse import OptionTable, parse

        table = OptionTable()
        DEFINITIONS[argv[0]](table)
        values = parse(table, argv[1:])
        if values is not None:
            return Arguments(command=argv[0], **values)
    return build_parser().parse_args(argv)


ROOT_HINT = (" (kcm needs root for the host's configuration directory, cgroups, /proc/irq "
             "and the install directory; run it as root, or point --conf-dir and "
             "--install-dir at directories you own)")


def _privilege_hint(message: str) -> str:
    denied = "Permission denied" in message or "Operation not permitted" in message
    return ROOT_HINT if denied and os.geteuid() != 0 else ""


def one_line(message: str) -> str:
    """An error message as one line: control characters (a newline in a path) escaped."""
    if message.isprintable():
        return message
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def launched() -> NoReturn:
    """The bundle's entry point: its launcher passes the name it was run by first
    (``sys.argv[1]``); run as ``cmk`` (kcm install's second link) it speaks CMK's command
    line."""
    name = sys.argv.pop(1) if len(sys.argv) > 1 else "kcm"
    if name.rpartition("/")[2] == "cmk":
        from kcm.cmk import main as cmk_main

        exit_after(cmk_main(), sys.argv[1:])
    exit_after(main(), sys.argv[1:])


def entry() -> NoReturn:
    """The kcm command (``bin/kcm``, ``python -m kcm``): run it, then exit."""
    exit_after(main(), sys.argv[1:])


QUICK_EXIT = frozenset({"isolate", "describe", "reconcile", "init", "doctor"})
"""Commands whose finished process skips the interpreter's teardown (``exit_after``):
they start no thread, register no atexit handler and leave no file half written (kcm's
writes go through ``kcm.durable``), so teardown has nothing left to do."""


def exit_after(status: int, argv: Sequence[str]) -> NoReturn:
    """End the process with ``status``. After a command of ``QUICK_EXIT`` the
    interpreter's teardown, which frees every module and runs a last garbage collection
    (about 2 ms of CPU, more than isolate's own work), is skipped for a process about to
    vanish: its output is flushed, then ``os._exit``."""
    threading = sys.modules.get("threading")
    if argv[:1] and argv[0] in QUICK_EXIT and (threading is None
                                              or threading.active_count() == 1):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)
    sys.exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; every KcmError becomes one ``kcm: ...`` line and its exit code.

    SIGPIPE stays ignored (Python's default), so a client or API server that hangs up
    is an error on that one connection, never the death of a server. A reader of our
    output that goes away (``kcm manifests | head``) ends the command quietly.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv in (["-h"], ["--help"]) or (
            len(argv) == 2 and argv[0] in COMMANDS and argv[1] in ("-h", "--help")):
        from kcm.helptext import HELP

        print(HELP[argv[0] if len(argv) == 2 else ""], end="")
        return 0
    if argv == ["--version"]:
        print(f"kcm {__version__}")
        return 0
    try:
        args = parse_arguments(argv)
        if args.command == "isolate" and not args.command_argv:
            print("kcm isolate: error: a COMMAND to run is required", file=sys.stderr)
            return 2
        module_name, _ = COMMANDS[args.command]
        env.check_log_level()
        module = __import__(f"kcm.commands.{module_name}", fromlist=["run"])
        return module.run(args)
    except KcmError as error:
        print(f"kcm: {one_line(str(error))}{_privilege_hint(str(error))}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
