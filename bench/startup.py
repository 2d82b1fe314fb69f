"""Start-up CPU cost of each command against ``python -c pass``: user plus system CPU
time of the process and its children (``wait4``), median of interleaved runs, from a
regular (non-editable) install in a fresh virtual environment.

The floor for ``isolate`` is a minimal Python isolate doing the same durable work,
started the same way (with site, as a pip-installed script is; under ``-I -S``, as the
bundle that ``kcm install`` puts on hosts is): take the lock, read the pool, write the
task into ``tasks`` and ``task-info`` (two fsyncs: the file, then the directory), pin,
run ``true``, take the lock again and write the release without syncing. kcm isolate
ends without the interpreter's teardown (``os._exit`` once its output is flushed); the
minimal isolate exits normally, and once more skipping teardown as kcm does, so the
rows show what kcm's own imports and checks cost on top. Commands that
talk to Kubernetes (discover, node-report --publish, cluster-init, webhook) are not
here: their cost is the client library's, not the command line's. Minting the webhook's
certificate (``kcm manifests`` without a kept one) is importing cryptography.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.isolate import install_bundle, install_with_conf

RUNS = 25

MINIMAL_ISOLATE = r"""
import fcntl, os, sys
conf, pool = sys.argv[1], sys.argv[2]
def write(path, text, sync):
    temp = path + ".tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, text.encode())
    if sync:
        os.fsync(fd)
    os.close(fd)
    os.rename(temp, path)
lock = os.open(os.path.join(conf, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(lock, fcntl.LOCK_EX)
pool_dir = os.path.join(conf, "pools", pool)
exclusive = open(os.path.join(pool_dir, "exclusive")).read().strip() == "1"
name = sorted(n for n in os.listdir(pool_dir) if n != "exclusive")[0]
list_dir = os.path.join(pool_dir, name)
tasks = open(os.path.join(list_dir, "tasks")).read().strip()
pid = os.getpid()
write(os.path.join(list_dir, "tasks"), ",".join(filter(None, [tasks, str(pid)])), True)
write(os.path.join(list_dir, "task-info"), f"{pid} 0\n", False)
dir_fd = os.open(list_dir, os.O_RDONLY)
os.fsync(dir_fd)
os.close(dir_fd)
fcntl.flock(lock, fcntl.LOCK_UN)
child = os.fork()
if child == 0:
    os.sched_setaffinity(0, {0})
    os.execvpe("true", ["true"], {**os.environ, "KCM_CPUS_ASSIGNED": "0"})
os.waitpid(child, 0)
fcntl.flock(lock, fcntl.LOCK_EX)
write(os.path.join(list_dir, "tasks"), tasks, False)
write(os.path.join(list_dir, "task-info"), "", False)
fcntl.flock(lock, fcntl.LOCK_UN)
if sys.argv[3:] == ["--skip-teardown"]:
    os._exit(0)
"""


def cpu_ms(argv: list[str]) -> float:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status:
        raise RuntimeError(f"{argv} failed: {status}")
    return (usage.ru_utime + usage.ru_stime) * 1000


def run(runs: int = RUNS) -> str:
    work = Path(tempfile.mkdtemp(prefix="kcm-bench-startup-"))
    try:
        python, kcm, conf = install_with_conf(work)
        minimal = work / "minimal_isolate.py"
        minimal.write_text(MINIMAL_ISOLATE)
        scratch = work / "init"
        commands = {
            "python -c pass": [python, "-c", "pass"],
            "minimal isolate (python -I -S)": [python, "-I", "-S", str(minimal), str(conf),
                                               "infra"],
            "minimal isolate (python, with site)": [python, str(minimal), str(conf), "infra"],
            "minimal isolate skipping teardown (python -I -S)": [
                python, "-I", "-S", str(minimal), str(conf), "infra", "--skip-teardown"],
            "minimal isolate skipping teardown (python, with site)": [
                python, str(minimal), str(conf), "infra", "--skip-teardown"],
            "kcm isolate --pool=infra -- true": [kcm, "isolate", f"--conf-dir={conf}",
                                                 "--pool=infra", "--", "true"],
            "kcm --version": [kcm, "--version"],
            "kcm describe": [kcm, "describe", f"--conf-dir={conf}"],
            "kcm reconcile (once)": [kcm, "reconcile", f"--conf-dir={conf}", "-o", "json"],
            "kcm init (then removed)": ["sh", "-c", f'"$0" init --conf-dir={scratch} '
                                        f'--num-dp-cores=1 --num-cp-cores=0 2>/dev/null; '
                                        f'rm -rf {scratch}', kcm],
            "sh -c 'rm -rf DIR' (init's wrapper)": ["sh", "-c", f"rm -rf {scratch}"],
            "kcm doctor": ["sh", "-c", f'"$0" doctor --conf-dir={conf} --install-dir={work} '
                           '-o json >/dev/null; exit 0', kcm],
            "kcm manifests (mints a certificate)": [kcm, "manifests"],
            "kcm manifests --webhook-cert-dir=DIR (kept)": [
                kcm, "manifests", f"--webhook-cert-dir={work / 'certs'}"],
            "kcm manifests --no-webhook": [kcm, "manifests", "--no-webhook"],
            "kcm describe -o yaml": [kcm, "describe", f"--conf-dir={conf}", "-o", "yaml"],
            "kcm --help": [kcm, "--help"],
            "kcm isolate --help": [kcm, "isolate", "--help"],
        }
        subprocess.run([kcm, "manifests", f"--webhook-cert-dir={work / 'certs'}"],
                       stdout=subprocess.DEVNULL, check=True)
        bundled = install_bundle(kcm, work)
        if bundled:
            commands["installed bundle: kcm isolate --pool=infra -- true"] = [
                bundled, "isolate", f"--conf-dir={conf}", "--pool=infra", "--", "true"]
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, argv in commands.items():
                samples[name].append(cpu_ms(argv))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor = statistics.median(samples["python -c pass"])
    minimal_cost = statistics.median(samples["minimal isolate (python -I -S)"])
    wrapper = statistics.median(samples.pop("sh -c 'rm -rf DIR' (init's wrapper)"))
    lines = ["| command | CPU ms (median) | ratio to python -c pass |", "|---|---|---|"]
    for name, values in samples.items():
        median = statistics.median(values)
        if name.startswith("kcm init"):
            median -= wrapper
        lines.append(f"| `{name}` | {median:.1f} | {median / floor:.2f} |")
    isolate = statistics.median(samples["kcm isolate --pool=infra -- true"])
    with_site = statistics.median(samples["minimal isolate (python, with site)"])
    bundle = statistics.median(samples.get("installed bundle: kcm isolate --pool=infra -- true",
                                           [float("nan")]))
    skipping = statistics.median(samples["minimal isolate skipping teardown (python -I -S)"])
    skipping_site = statistics.median(
        samples["minimal isolate skipping teardown (python, with site)"])
    lines += ["", f"isolate against the minimal isolate started the same way: "
              f"{isolate / with_site:.2f}x from the virtual environment (with site), "
              f"{bundle / minimal_cost:.2f}x as the installed bundle (-I -S); against the "
              f"minimal isolate that also skips teardown: {isolate / skipping_site:.2f}x "
              f"and {bundle / skipping:.2f}x. "
              f"{runs} interleaved runs each; Python {sys.version.split()[0]}, "
              f"{os.cpu_count()} CPUs. kcm init's row has the `sh -c` and `rm -rf` around it "
              "subtracted; kcm doctor's includes its `sh -c`."]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
