"""The command line contract: argument splitting and the lean isolate start-up path."""

import subprocess
import sys

import pytest

from kcm.cli import fast_isolate_arguments, parse_arguments, split_isolate_argv


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
