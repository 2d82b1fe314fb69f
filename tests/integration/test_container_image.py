"""What can be checked of the container image without a Docker engine: every file it
copies exists, it installs the wheel and the bundle where ``kcm install`` looks, and
its entrypoint is the real kcm command."""

import json
import re
import shlex
from pathlib import Path

from kcm.install import DEFAULT_BUNDLE
from kcm.manifests import DEFAULT_IMAGE

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in
            joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_every_copied_source_exists():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for keyword, rest in instructions():
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        *sources, _ = shlex.split(rest)
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.split("/")[0] not in ignored, f"{source} is excluded by .dockerignore"


def test_the_bundle_lands_where_kcm_install_looks():
    copies = [rest for keyword, rest in instructions() if keyword == "COPY"]
    assert f"--from=build /bundle {DEFAULT_BUNDLE}" in copies


def test_the_entrypoint_is_the_kcm_command(kcm):
    entrypoint = next(rest for keyword, rest in instructions() if keyword == "ENTRYPOINT")
    cmd = next(rest for keyword, rest in instructions() if keyword == "CMD")
    assert entrypoint == '["kcm"]'
    args = json.loads(cmd)
    assert kcm.run(*args, check=True).stdout.startswith("usage: kcm")


def test_base_image_and_default_image_name():
    bases = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert all(base.startswith("python:3.11-slim") for base in bases)
    assert "USER 65532:65532" in DOCKERFILE
    assert DEFAULT_IMAGE.endswith(DOCKERFILE.split("kcm:")[1].split()[0])
