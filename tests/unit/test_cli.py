"""The command line contract: argument splitting and the lean isolate start-up path."""

import subprocess
import sys
from pathlib import Path

import pytest

from kcm.cli import fast_isolate_arguments, parse_arguments, split_isolate_argv

ROOT = str(Path(__file__).resolve().parents[2])


@pytest.mark.parametrize(("argv", "options", "command"), [
    (["--pool=infra", "sleep", "--", "inf"], ["--pool=infra"], ["sleep", "inf"]),
    (["--pool=infra", "--", "sleep", "inf"], ["--pool=infra"], ["sleep", "inf"]),
    (["--pool=infra", "sleep", "inf"], ["--pool=infra"], ["sleep", "inf"]),
    (["--pool", "infra", "--no-affinity", "ls", "-l"], ["--pool", "infra", "--no-affinity"],
     ["ls", "-l"]),
    (["--pool=x", "--", "a", "--", "b"], ["--pool=x"], ["a", "--", "b"]),
    (["--pool=x"], ["--pool=x"], []),
])
def test_isolate_argv_splits_at_the_command(argv, options, command):
    assert split_isolate_argv(argv) == (options, command)


@pytest.mark.parametrize("options", [
    ["--pool=dataplane", "--num-cores=2", "--numa-node=1", "--conf-dir=/etc/kcm"],
    ["--pool", "dataplane", "--socket-id", "0", "--no-affinity"],
    ["--pool=infra"],
])
def test_the_fast_parser_agrees_with_argparse(options):
    fast = fast_isolate_arguments(options)
    assert fast is not None
    slow = parse_arguments(["isolate", *options, "true"])
    for key in ("conf_dir", "pool", "num_cores", "socket_id", "numa_node", "no_affinity"):
        assert getattr(fast, key) == getattr(slow, key)


@pytest.mark.parametrize("options", [
    ["--help"], ["--po=x"], ["--pool=x", "--num-cores=two"], ["--num-cores=1"],
    ["--pool=x", "--socket-id=0", "--numa-node=0"], ["--pool"],
])
def test_the_fast_parser_leaves_the_unusual_to_argparse(options):
    assert fast_isolate_arguments(options) is None


def test_isolate_start_up_imports_nothing_heavy():
    code = ("import sys; before = set(sys.modules); from kcm.cli import parse_arguments; "
            "a = parse_arguments(['isolate', '--pool=x', 'true']); "
            "import kcm.commands.isolate; print(sorted(set(sys.modules) - before))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    for heavy in ("'argparse'", "'json'", "'yaml'", "'lightkube'", "'dataclasses'", "'re'",
                  "'kcm.topology'", "'kcm.allocate'", "'typing'", "'enum'", "'logging'"):
        assert heavy not in loaded, heavy


QUICK_LINES = [
    ["describe"], ["describe", "--conf-dir=/x", "-o", "table"], ["describe", "--output=yaml"],
    ["reconcile", "--interval", "5", "-o", "json"], ["enforce", "--steer-irqs"],
    ["init", "--num-dp-cores=2", "--num-cp-cores", "0", "--dp-mode=spread"],
    ["discover", "--node-name=n1", "--resource-prefix=cpu.example.com", "--taint"],
    ["node-report", "--publish", "--metrics-port=9100", "--interval=0.5"],
    ["install", "--from=/b", "--install-dir=/opt/x"], ["uninstall", "--force", "-o", "json"],
    ["manifests", "--namespace=ops", "--only=reconcile", "--no-webhook"],
    ["cluster-init", "--all-hosts", "--dry-run", "--node-selector=a=b"],
    ["cluster-init", "--host-list=a,b", "--timeout=30"],
    ["webhook", "--tls-cert-file=c", "--tls-private-key-file=k", "--secure-port=9443"],
    ["doctor", "-o", "text", "--report-max-age=60"],
]


@pytest.mark.parametrize("argv", QUICK_LINES, ids=" ".join)
def test_the_quick_parser_reads_usual_lines_as_argparse_does(argv):
    from kcm.cli import build_parser
    from kcm.options import DEFINITIONS
    from kcm.quickparse import OptionTable, parse

    table = OptionTable()
    DEFINITIONS[argv[0]](table)
    quick = parse(table, argv[1:])
    assert quick is not None
    assert {"command": argv[0], **quick} == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [
    ["describe", "--help"], ["describe", "--conf=/x"], ["describe", "-o", "xml"],
    ["reconcile", "--interval=soon"], ["init", "--num-dp-cores", "-1"], ["enforce", "extra"],
    ["cluster-init"], ["cluster-init", "--all-hosts", "--host-list=a"], ["webhook"],
    ["discover", "--taint=yes"], ["describe", "-ojson"],
])
def test_the_quick_parser_leaves_the_unusual_to_argparse(argv):
    from kcm.options import DEFINITIONS
    from kcm.quickparse import OptionTable, parse

    table = OptionTable()
    DEFINITIONS[argv[0]](table)
    assert parse(table, argv[1:]) is None


@pytest.mark.parametrize("argv", [["describe", "--conf-dir=/nonexistent"], ["--version"],
                                  ["reconcile", "--conf-dir=/nonexistent"]])
def test_usual_commands_start_without_argparse_or_re(argv):
    # -S: without site (an editable install's finder imports re), as the bundle runs.
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); from kcm.cli import main; "
            "sys.stdout = open('/dev/null', 'w'); sys.stderr = sys.stdout; "
            "main(sys.argv[1:]); sys.stdout = sys.__stdout__; print(sorted(sys.modules))")
    loaded = subprocess.run([sys.executable, "-S", "-c", code, *argv], capture_output=True,
                            text=True, check=True).stdout
    for heavy in ("'argparse'", "'re'", "'gettext'", "'shutil'", "'textwrap'"):
        assert heavy not in loaded, heavy
