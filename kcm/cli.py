"""The command line: read the arguments, run the command's module (imported when it
runs), turn its errors into one line and an exit code. Each command's options are
defined once, in ``kcm.options``.

argparse (with ``re``, ``gettext`` and ``shutil``) costs more CPU than a one-shot command
itself, so the usual command lines are read without it: ``kcm isolate`` by a small
parser of its own (it wraps every workload start), the others by ``kcm.quickparse``
from the same definitions. argparse reads the rest and prints help and usage errors.
"""

from __future__ import annotations

import os
import sys

from kcm import __version__, env
from kcm.errors import KcmError, one_line

TYPE_CHECKING = False  # collections.abc costs ~3 ms on the isolate start-up path
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

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


def build_parser():
    """The argparse parser (``kcm.options``): help, errors, and whatever
    ``kcm.quickparse`` leaves to it."""
    from kcm.options import parser

    return parser(COMMANDS)


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
    if argv and argv[0] in COMMANDS:
        from kcm.options import DEFINITIONS
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


def launched() -> NoReturn:
    """The bundle's entry point: its launcher passes the name it was run by first
    (``sys.argv[1]``); run as ``cmk`` (kcm install's second link) it speaks CMK's command
    line."""
    name = sys.argv.pop(1) if len(sys.argv) > 1 else "kcm"
    if name.rpartition("/")[2] == "cmk":
        from kcm.cmk import main as cmk_main

        exit_after(cmk_main(main), sys.argv[1:])
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
