"""What both least-privilege tests (stand-in and real API server) check once the node
agent has discovered and published: doctor's cluster checks pass, and uninstall removes
the NodeReport and the taint."""

import json


def doctor_passes_and_uninstall_cleans(kcm, conf, install, node: str) -> list[str]:
    """Run doctor and uninstall as the agent; what uninstall removed."""
    doctor = kcm.run("doctor", f"--conf-dir={conf}", f"--install-dir={install}",
                     "--output=json")
    checks = {check["name"]: check for check in json.loads(doctor.stdout)["checks"]}
    for name in ("extendedResources", "nodeLabel", "nodeReport"):
        assert checks[name]["ok"], checks[name]
    removed = json.loads(kcm.run("uninstall", f"--conf-dir={conf}",
                                 f"--install-dir={install}", check=True).stdout)["removed"]
    assert f"NodeReport {node}" in removed and "taint kcm.dev/node" in removed
    return removed
