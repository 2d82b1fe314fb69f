"""The environment table in docs/config.md is kcm.env.VARIABLES, and every KCM_ name in the
code is read in kcm/env.py only."""

import re
from pathlib import Path

from kcm.env import VARIABLES

ROOT = Path(__file__).resolve().parents[2]


def test_config_doc_shows_the_table_of_kcm_env():
    doc = (ROOT / "docs/config.md").read_text()
    for name, meaning in VARIABLES.items():
        assert f"| `{name}` | {meaning} |" in doc, name


def test_only_kcm_env_reads_the_environment():
    readers = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "kcm").rglob("*.py")
                     if re.search(r"os\.environ(?!\)|\s*\))", path.read_text())
                     and path.name != "env.py")
    # supervise.py copies the whole environment into the workload; k8s.py reads the
    # Kubernetes client's own variables (KUBERNETES_SERVICE_*, KUBECONFIG).
    assert readers == ["kcm/k8s.py", "kcm/supervise.py"]
    for path in (ROOT / "kcm").rglob("*.py"):
        if path.name != "env.py":
            assert not re.search(r"environ[^\n]*\"KCM_", path.read_text()), path
