"""The prebuilt launcher is what its assembly source builds (nothing else is shipped)."""

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

LAUNCHERS = Path(__file__).resolve().parents[2] / "kcm" / "launcher"


@pytest.mark.skipif(not (shutil.which("as") and shutil.which("ld"))
                    or platform.machine() != "x86_64",
                    reason="needs the GNU assembler and linker on x86_64")
def test_the_prebuilt_x86_64_launcher_is_its_source_assembled(tmp_path):
    obj, binary = tmp_path / "launcher.o", tmp_path / "launcher"
    subprocess.run(["as", "--64", "-o", str(obj), str(LAUNCHERS / "x86_64.s")], check=True)
    subprocess.run(["ld", "-static", "-nostdlib", "-s", "-z", "noseparate-code", "-o",
                    str(binary), str(obj)], check=True)
    assert binary.read_bytes() == (LAUNCHERS / "x86_64").read_bytes()
