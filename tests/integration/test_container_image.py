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
    assert bases[0].startswith("python:3.11-slim") and bases[-1].startswith("busybox:")
    assert "USER 65532:65532" in DOCKERFILE
    assert DEFAULT_IMAGE.endswith(DOCKERFILE.split("kcm:")[1].split()[0])


def test_the_dockerfile_makes_the_image_the_node_tests_run():
    """The image tests/k8s_node imports is built without a registry by
    scripts/k8s-node.sh; its last stage must hold what the Dockerfile's holds."""
    script = (ROOT / "scripts/k8s-node.sh").read_text()
    last = DOCKERFILE[DOCKERFILE.rindex("FROM "):]
    assert "ln -s ../share/kcm/bundle/kcm /usr/local/bin/kcm" in last
    assert 'ln -s ../share/kcm/bundle/kcm "$rootfs/usr/local/bin/kcm"' in script
    assert f'"$rootfs{DEFAULT_BUNDLE}"' in script.replace("/usr/local/share/kcm/bundle",
                                                           DEFAULT_BUNDLE)
    assert "--user 65532:65532" in script and "USER 65532:65532" in last
    assert """--entrypoint '["kcm"]' --cmd '["--help"]'""" in script
    assert 'ENTRYPOINT ["kcm"]' in last and 'CMD ["--help"]' in last
    assert "65532:65532:nonroot" in script and "65532:65532:nonroot" in last
