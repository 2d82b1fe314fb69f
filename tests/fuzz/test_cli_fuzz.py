"""Fuzzing the real command line: every subcommand, with its own options given values
from a pool of hostile inputs. Any traceback, or an exit status other than 0, 1 or 2
(or the workload's, for isolate), fails. Fixed seed in CI; KCM_FUZZ_EXAMPLES for more.

Paths always point into a scratch directory, Kubernetes at a kubeconfig that does not
exist, so no example touches the machine or a cluster.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kcm.cli import COMMANDS, build_parser
from tests.conftest import KCM, private_host
from tests.integration.workloads import make_conf

EXAMPLES = int(os.environ.get("KCM_FUZZ_EXAMPLES", "0")) or 150
SCRATCH = Path(tempfile.mkdtemp(prefix="kcm-fuzz-cli-"))
CONF = make_conf(SCRATCH / "conf", {"dataplane": (True, ["0"]), "infra": (False, ["1"])})
PATH_OPTIONS = {"--conf-dir", "--install-dir", "--from", "--tls-cert-file",
                "--tls-private-key-file", "--kubelet-state", "--webhook-cert-dir"}
VALUES = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "2", "65536", "1e10", "9.3e9", "nan", "inf", "-inf",
                     "9" * 5000, "0x10", "1.5", " ", "\n", "a\nb", "ß", "Bad_NS", "kcm.dev",
                     "a=b", "=", "packed", "spread", "json", "table", "text", "init-pod",
                     "127.0.0.1", "::1", "no-such-host.invalid", "dataplane", "infra", "nope"]),
    st.text(st.characters(blacklist_characters="\x00"), max_size=12))
PATHS = st.sampled_from([str(CONF), str(SCRATCH / "missing"), str(SCRATCH / "a\nb"), "",
                         str(CONF / "pools"), str(CONF / "lock")])


def options_of(command: str) -> list[tuple[str, bool]]:
    """(option, takes a value) for each long option of a subcommand, from the parser."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return [(option, action.nargs != 0) for action in sub._actions
            for option in action.option_strings if option.startswith("--")
            and option not in ("--help",)]


OPTIONS = {command: options_of(command) for command in COMMANDS}


@st.composite
def command_lines(draw) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    argv = [command]
    for option, takes_value in draw(st.lists(st.sampled_from(OPTIONS[command]), max_size=4)):
        if not takes_value:
            argv.append(option)
            continue
        value = draw(PATHS if option in PATH_OPTIONS else VALUES)
        argv.append(f"{option}={value}")
    if command in ("install", "uninstall", "doctor") and not any(
            a.startswith("--install-dir") for a in argv):
        argv.append(f"--install-dir={SCRATCH / 'opt-bin'}")
    if command == "isolate":
        argv += draw(st.sampled_from([["true"], ["--", "true"], [], ["sh", "-c", "exit 3"]]))
    return argv


@pytest.fixture(scope="module", autouse=True)
def remove_scratch():
    yield
    shutil.rmtree(SCRATCH, ignore_errors=True)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(command_lines())
def test_every_subcommand_survives_hostile_arguments(argv):
    env = {**private_host(dict(os.environ), SCRATCH), "KCM_CONF_DIR": str(CONF),
           "KUBECONFIG": str(SCRATCH / "no-config"),
           "KCM_LOCK_TIMEOUT": "2", "KCM_API_RETRY_SECONDS": "0", "NODE_NAME": "fuzz-node"}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    try:
        result = subprocess.run([KCM, *argv], env=env, capture_output=True, text=True,
                                timeout=5, cwd=SCRATCH, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return  # a valid server or loop (webhook, --interval); run() killed our child
    allowed = {0, 1, 2} | ({3} if argv[0] == "isolate" else set())
    assert "Traceback" not in result.stderr, (argv, result.stderr)
    assert result.returncode in allowed, (argv, result.returncode, result.stderr)
    assert all(line.startswith(("kcm", "usage:", " ", "  ")) or not line
               for line in result.stderr.splitlines()), (argv, result.stderr)
