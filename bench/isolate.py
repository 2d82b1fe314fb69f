"""Start-up overhead of ``kcm isolate --pool=infra -- true`` against the machine's floor.

kcm is installed from the working tree into a fresh virtual environment (a regular,
non-editable install, as in the container image), and the self-contained bundle that
``kcm install`` puts on hosts (a relocatable Python with its own loader and libc, behind
a static launcher) is built and installed too: that is what workloads without Python
run. Runs are interleaved so that drift in the machine's load hits every command alike;
the median of each is reported, and the ratio to bare ``python -c pass`` with the same
interpreter.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 60


def install_kcm(venv: Path) -> tuple[str, str]:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check",
                    str(ROOT)], check=True)
    return str(venv / "bin/python"), str(venv / "bin/kcm")


def install_with_conf(work: Path) -> tuple[str, str, Path]:
    """kcm in a fresh venv under ``work`` and a configuration directory of one dataplane
    core and infra; (python, kcm, conf dir)."""
    python, kcm = install_kcm(work / "venv")
    conf = work / "conf"
    subprocess.run([kcm, "init", f"--conf-dir={conf}", "--num-dp-cores=1",
                    "--num-cp-cores=0"], check=True, stderr=subprocess.DEVNULL)
    return python, kcm, conf


def install_bundle(kcm: str, work: Path) -> str | None:
    """Build and install the bundle."""
    bundle = work / "bundle"
    subprocess.run(["bash", str(ROOT / "scripts/build-bundle.sh"), str(bundle)], check=True,
                   env={**os.environ, "PYTHON": sys.executable}, capture_output=True)
    subprocess.run([kcm, "install", f"--install-dir={work / 'opt-bin'}", f"--from={bundle}"],
                   check=True, capture_output=True)
    return str(work / "opt-bin" / "kcm")


def time_runs(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            started = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
            samples[name].append(time.perf_counter() - started)
    return samples


def run(runs: int = RUNS) -> str:
    work = Path(tempfile.mkdtemp(prefix="kcm-bench-isolate-"))
    try:
        python, kcm, conf = install_with_conf(work)
        commands = {
            "python -c pass": [python, "-c", "pass"],
            "taskset -c 0 true": ["taskset", "-c", "0", "true"],
            "kcm isolate --pool=infra -- true": [kcm, "isolate", f"--conf-dir={conf}",
                                                 "--pool=infra", "--", "true"],
            "kcm isolate --pool=dataplane -- true": [kcm, "isolate", f"--conf-dir={conf}",
                                                     "--pool=dataplane", "--", "true"],
        }
        installed = install_bundle(kcm, work)
        if installed:
            commands["installed bundle: kcm isolate --pool=infra -- true"] = [
                installed, "isolate", f"--conf-dir={conf}", "--pool=infra", "--", "true"]
        samples = time_runs(commands, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor = statistics.median(samples["python -c pass"])
    lines = ["| command | median ms | p90 ms | ratio to python -c pass |", "|---|---|---|---|"]
    for name, values in samples.items():
        values.sort()
        median = statistics.median(values)
        p90 = values[int(len(values) * 0.9) - 1]
        lines.append(f"| `{name}` | {median * 1000:.1f} | {p90 * 1000:.1f} | "
                     f"{median / floor:.2f} |")
    lines.append("")
    lines.append(f"{runs} interleaved runs each; Python {sys.version.split()[0]}, "
                 f"{os.cpu_count()} CPUs.")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
