"""The ``cmk`` command: CMK v1.4.1's command line, translated to kcm's.

Workloads, scripts and pod specs written for CMK call ``cmk isolate --pool=exclusive ...``
and friends; this module turns such a command line into kcm's and runs it. The
translation is pure (``translate``); what CMK had and kcm does not is a one-line error or
a warning, never silently different. The differences are listed in docs/cli.md.
"""

from __future__ import annotations

import sys

from kcm import __version__
from kcm.errors import InputError, one_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

CMK_VERSION = "v1.4.1"
CMK_CONF_DIR = "/etc/cmk"

USAGE = f"""cmk (kcm {__version__} speaking CMK {CMK_VERSION}'s command line)

Usage:
  cmk (-h | --help)
  cmk --version
  cmk cluster-init (--host-list=<list>|--all-hosts) [--cmk-img=<img>] [--conf-dir=<dir>]
                   [--install-dir=<dir>] [--num-exclusive-cores=<num>]
                   [--num-shared-cores=<num>] [--shared-mode=<mode>]
                   [--exclusive-mode=<mode>] [--namespace=<name>] [--no-taint]
  cmk init [--conf-dir=<dir>] [--num-exclusive-cores=<num>] [--num-shared-cores=<num>]
           [--socket-id=-1] [--shared-mode=<mode>] [--exclusive-mode=<mode>]
  cmk discover [--conf-dir=<dir>] [--no-taint]
  cmk describe [--conf-dir=<dir>]
  cmk reconcile [--conf-dir=<dir>] [--publish] [--interval=<seconds>]
  cmk isolate [--conf-dir=<dir>] [--socket-id=<num>] --pool=<pool> <command>
              [-- <args> ...] [--no-affinity]
  cmk install [--install-dir=<dir>]
  cmk node-report [--conf-dir=<dir>] [--publish] [--interval=<seconds>]
  cmk uninstall [--install-dir=<dir>] [--conf-dir=<dir>] [--namespace=<name>]

Defaults as CMK's: --conf-dir=/etc/cmk, --install-dir=/opt/bin, --interval=0 (once),
--socket-id=-1 (any socket), init's pools exclusive, shared and infra. kcm's own
command is kcm (kcm --help); docs/cli.md lists where cmk differs from CMK."""

DIFFERENCES = [
    "init makes CMK's pools (exclusive, one CPU list per physical core; shared; infra, one "
    "list per socket) in CMK's socket layout, pools/<pool>/<socket>/<cpulist> (kcm init "
    "--layout=sockets); the cores are kcm's choice (whole cores, isolcpus first, packed), "
    "which may differ from CMK's.",
    "init --socket-id other than -1, and --excl-non-isolcpus, are refused: kcm lays out "
    "pools over the whole node and makes no exclusive-non-isolcpus pool.",
    "discover taints the node as CMK did (--no-taint does not); the extended resources "
    "are kcm's (<prefix>/<pool>, see kcm discover), not CMK's cmk.intel.com names.",
    "reconcile --publish is ignored with a warning: kcm publishes no ReconcileReport; the "
    "node's state is in node-report --publish's NodeReport. Its printed report has CMK's "
    "shape ({\"reclaimedCpuLists\": [...]}).",
    "node-report --publish writes kcm's NodeReport, whose schema is kcm's (CMK's report "
    "lacked the checks and per-NUMA data).",
    "cluster-init ignores --cmk-cmd-list, --cmk-img-pol, --pull-secret, --saname and "
    "--excl-non-isolcpus with a warning: kcm's node agent runs every step, with its own "
    "service account and RBAC; its webhook is deployed too unless kcm's --no-webhook.",
    "uninstall --namespace is ignored (kcm finds its objects by label).",
    "webhook, reconfigure, reconfigure_setup and reaffinitize are not provided: kcm "
    "webhook takes its own flags (kcm webhook --help).",
    "isolate runs <command> [-- <args>] without a shell, except CMK's one-string form "
    "(\"echo 1 > f && cat f\"), which runs under /bin/sh -c (see kcm isolate --help).",
    "init on isolated cores keeps core 0 (where the kernel's own work lands) out of the "
    "exclusive pool: on a Xeon D with isolcpus=0-4,8-12, CMK made exclusive 0,8 to 3,11 and "
    "shared 4,12; kcm makes exclusive 1,9 to 4,12 and shared 0,8. Its log lines are kcm's "
    "(\"kcm: info: pool exclusive (exclusive): ...\"), not CMK's \"INFO:root:\" lines.",
    "cmk --help prints the usage above, not CMK's docopt text; a bad cmk line is one "
    "\"cmk: ...\" line and exit status 2 (CMK's docopt printed its usage).",
]
"""Where the cmk command differs from CMK v1.4.1, and why (docs/cli.md shows them)."""

# CMK option -> (kcm option or None to drop it, takes a value)
_VALUE = True
_FLAG = False
_OPTIONS: dict[str, dict[str, tuple[str | None, bool]]] = {
    "init": {"--conf-dir": ("--conf-dir", _VALUE),
             "--num-exclusive-cores": ("--num-dp-cores", _VALUE),
             "--num-shared-cores": ("--num-cp-cores", _VALUE),
             "--exclusive-mode": ("--dp-mode", _VALUE),
             "--shared-mode": ("--cp-mode", _VALUE),
             "--socket-id": (None, _VALUE), "--excl-non-isolcpus": (None, _VALUE)},
    "discover": {"--conf-dir": ("--conf-dir", _VALUE), "--no-taint": (None, _FLAG)},
    "describe": {"--conf-dir": ("--conf-dir", _VALUE)},
    "reconcile": {"--conf-dir": ("--conf-dir", _VALUE), "--publish": (None, _FLAG),
                  "--interval": (None, _VALUE)},
    "node-report": {"--conf-dir": ("--conf-dir", _VALUE), "--publish": ("--publish", _FLAG),
                    "--interval": (None, _VALUE)},
    "install": {"--install-dir": ("--install-dir", _VALUE)},
    "uninstall": {"--install-dir": ("--install-dir", _VALUE),
                  "--conf-dir": ("--conf-dir", _VALUE), "--namespace": (None, _VALUE)},
    "isolate": {"--conf-dir": ("--conf-dir", _VALUE), "--socket-id": (None, _VALUE),
                "--pool": ("--pool", _VALUE), "--no-affinity": ("--no-affinity", _FLAG)},
    "cluster-init": {"--host-list": ("--host-list", _VALUE), "--all-hosts": ("--all-hosts", _FLAG),
                     "--cmk-img": ("--image", _VALUE), "--conf-dir": ("--conf-dir", _VALUE),
                     "--install-dir": ("--install-dir", _VALUE),
                     "--num-exclusive-cores": ("--num-dp-cores", _VALUE),
                     "--num-shared-cores": ("--num-cp-cores", _VALUE),
                     "--exclusive-mode": ("--dp-mode", _VALUE),
                     "--shared-mode": ("--cp-mode", _VALUE),
                     "--namespace": ("--namespace", _VALUE), "--no-taint": (None, _FLAG),
                     "--cmk-cmd-list": (None, _VALUE), "--cmk-img-pol": (None, _VALUE),
                     "--pull-secret": (None, _VALUE), "--saname": (None, _VALUE),
                     "--excl-non-isolcpus": (None, _VALUE)},
}
_WITH_CONF_DIR = {"init", "discover", "describe", "reconcile", "node-report", "uninstall",
                  "isolate", "cluster-init"}


def translate(argv: list[str]) -> tuple[list[str], list[str]]:
    """(kcm's argv, warnings) for a CMK v1.4.1 command line; InputError when CMK's line
    is not valid or asks for what kcm cannot do."""
    if not argv or argv[0] not in _OPTIONS:
        known = ", ".join(sorted(_OPTIONS))
        raise InputError(f"unknown cmk command {argv[0]!r} (cmk commands: {known})"
                         if argv else "a command is required (cmk --help)")
    command, words = argv[0], argv[1:]
    given, positionals = _parse(command, words)
    warnings: list[str] = []
    out = [command]
    for option, value in given.items():
        target, takes_value = _OPTIONS[command][option]
        if target is not None:
            out.append(f"{target}={value}" if takes_value else target)
    if command in _WITH_CONF_DIR and "--conf-dir" not in given:
        out.append(f"--conf-dir={CMK_CONF_DIR}")
    if command == "init":
        out += ["--exclusive-pool-name=exclusive", "--shared-pool-name=shared",
                "--layout=sockets"]
        if given.get("--socket-id", "-1") != "-1":
            raise InputError("cmk init --socket-id is not supported: kcm lays out pools over "
                             "the whole node (isolate --socket-id picks a socket)")
        if given.get("--excl-non-isolcpus", "-1") != "-1":
            raise InputError("cmk init --excl-non-isolcpus is not supported: kcm makes no "
                             "exclusive-non-isolcpus pool (write it by hand, see docs/config.md)")
    if command in ("reconcile", "node-report"):
        interval = given.get("--interval", "0")
        if interval.strip() != "0":
            out.append(f"--interval={interval}")
    if command == "reconcile" and "--publish" in given:
        warnings.append("cmk reconcile --publish: kcm publishes no ReconcileReport; the "
                        "node's state is in node-report --publish's NodeReport")
    if command in ("discover", "cluster-init") and "--no-taint" not in given:
        out.append("--taint")
    if command == "cluster-init":
        dropped = [o for o in ("--cmk-cmd-list", "--cmk-img-pol", "--pull-secret", "--saname",
                               "--excl-non-isolcpus") if o in given]
        if dropped:
            warnings.append(f"cmk cluster-init: {', '.join(dropped)} ignored (kcm's node "
                            "agent runs every step; see kcm cluster-init --help)")
    if command == "isolate":
        socket = given.get("--socket-id", "-1")
        if socket != "-1":
            out.append(f"--socket-id={socket}")
        if "--pool" not in given:
            raise InputError("cmk isolate needs --pool=<pool>")
        if not positionals:
            raise InputError("cmk isolate needs a <command>")
        out += ["--", *positionals]
    elif positionals:
        raise InputError(f"cmk {command} takes no argument {positionals[0]!r}")
    return out, warnings


def _parse(command: str, words: list[str]) -> tuple[dict[str, str], list[str]]:
    """docopt's reading: options anywhere before ``--``; for isolate the first other word
    is <command> and what follows ``--`` its <args>."""
    known = _OPTIONS[command]
    given: dict[str, str] = {}
    positionals: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            positionals += words[index:]
            break
        if word.startswith("--") and not (command == "isolate" and positionals):
            name, equals, value = word.partition("=")
            if name not in known:
                raise InputError(f"cmk {command}: unknown option {name}")
            if known[name][1]:
                if not equals:
                    if index >= len(words):
                        raise InputError(f"cmk {command}: {name} needs a value")
                    value = words[index]
                    index += 1
            elif equals:
                raise InputError(f"cmk {command}: {name} takes no value")
            given[name] = value
        elif command == "isolate" and word == "--no-affinity":
            given[word] = ""
        else:
            positionals.append(word)
    return given, positionals


def main(kcm_main: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """``cmk ...``: translate, say what differs, and run kcm (``kcm_main``, the kcm
    command's entry, given by the caller so that this module needs nothing of the CLI)."""
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if words == ["--version"]:
        print(f"CMK {CMK_VERSION} (kcm {__version__})")
        return 0
    try:
        translated, warnings = translate(words)
    except InputError as error:
        print(f"cmk: {one_line(str(error))}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(f"cmk: warning: {warning}", file=sys.stderr)
    return kcm_main(translated)
