"""Bundle size and build time: what ``kcm install`` builds from the running Python when
there is no bundle (``kcm.bundle``), with ``strip`` (as on a machine with binutils) and
without it (a fresh machine). Sizes are bytes on disk (``du``). Before the on-demand
build (``scripts/build-bundle.sh`` with the whole standard library, every installed file
of the dependencies, unstripped libraries, and a static glibc launcher that needed a C
compiler) the bundle was 122 MB.
"""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import kcm.bundle


def disk_mb(path: Path) -> float:
    return int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0]) / 1024


def build(out: Path, strip: bool) -> tuple[float, float]:
    started = time.monotonic()
    kcm.bundle.build(str(out), strip=strip)
    return time.monotonic() - started, disk_mb(out)


def run() -> str:
    work = Path(tempfile.mkdtemp(prefix="kcm-bench-bundle-"))
    lines = ["| build | seconds | MB on disk | of which runtime/lib/python3.x (standard "
             "library part, kcm, dependencies) MB |",
             "|---|---|---|---|"]
    try:
        for strip in (True, False):
            out = work / f"bundle-{strip}"
            seconds, size = build(out, strip)
            stdlib = next((out / "runtime/lib").glob("python3.*"))
            lines.append(f"| {'with' if strip else 'without'} strip | {seconds:.1f} | "
                         f"{size:.0f} | {disk_mb(stdlib):.0f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
