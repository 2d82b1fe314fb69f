"""The suite's own rules: a test signals only processes it started, by PID."""

import itertools
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
BY_NAME = re.compile(r"\bpkill\b|\bkillall\b|pgrep[^\n|]*-f")


def test_no_test_searches_or_signals_processes_by_name():
    offenders = [f"{path.relative_to(TESTS)}:{number}"
                 for path in sorted(TESTS.rglob("*.py")) if path.name != "test_hygiene.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if BY_NAME.search(line)]
    assert not offenders, f"tests that find or signal processes by name: {offenders}"


HOST_PATHS = re.compile(r"/sys/fs/cgroup|/proc/irq|/var/lib/kubelet")
HOST_PATH_HOMES = {
    "enforce/cgroup_trees.py": "makes private trees under the real cpuset hierarchy",
    "enforce/test_enforce.py": "steers the real /proc/irq (marked host_state) and restores it",
    "k8s/test_manifests.py": "checks the hostPath mounts of the manifests (text only)",
    "k8s_node/node.py": "the real node's own kubepods cgroups, which its kubelet made",
    "test_docs.py": "rewrites the docs' host paths to a sandbox before running them",
    "unit/test_cgroups.py": "parses mountinfo text (no file is read)",
}
"""Where the host's own cgroup tree, IRQs or kubelet state may be named, and why."""


def test_no_test_reads_the_host_s_cgroups_irqs_or_kubelet_state_by_accident():
    """A test reads only what it made or chose. Host paths appear only where a test
    makes its own tree, or marks itself ``host_state``; and every environment a test
    builds for kcm from the process's own goes through ``private_host`` (kcm's default
    cgroup root and kubelet state pointed at the test's scratch space)."""
    named = sorted(str(path.relative_to(TESTS)) for path in TESTS.rglob("*.py")
                   if path.name != "test_hygiene.py" and HOST_PATHS.search(path.read_text()))
    assert set(named) <= set(HOST_PATH_HOMES), named
    chunks = (TESTS / "enforce/test_enforce.py").read_text().split("\ndef test_")
    for before, test in itertools.pairwise(chunks):
        if '"/proc/irq' in test and not before.endswith("@pytest.mark.host_state"):
            raise AssertionError(f"test_{test.split('(')[0]} reads /proc/irq unmarked")
    own_env = re.compile(r"dict\(os\.environ\)|\{\*\*os\.environ|os\.environ\.items\(\)")


    def builds_env(text: str) -> bool:  # in code, not in a workload's source string
        return any((found := own_env.search(line)) and not re.search(r"[\"']", line[:found.start()])
                   for line in text.splitlines())

    builders = [str(path.relative_to(TESTS)) for path in sorted(TESTS.rglob("*.py"))
                if builds_env(path.read_text()) and "private_host(" not in path.read_text()
                and path.name != "test_hygiene.py"]
    assert not builders, f"environments for kcm built without private_host: {builders}"
