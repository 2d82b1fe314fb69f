#!/usr/bin/env python3
"""Write a container image as a docker-archive tarball (what ``ctr images import`` and
``docker load`` read) from a root file system directory: one layer, no registry, no
docker daemon, standard library only. Owners are numeric, mtimes 0, entries sorted, so
the same tree gives the same image.

Usage: image.py ROOTFS NAME:TAG OUT.tar [--entrypoint JSON] [--cmd JSON] [--env K=V]...
                [--user UID:GID]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import tarfile

EPOCH = "1970-01-01T00:00:00Z"


def layer(rootfs: str) -> bytes:
    """The root file system as an uncompressed tar, in a fixed order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory, subdirectories, files in os.walk(rootfs):
            subdirectories.sort()
            for name in [*subdirectories, *sorted(files)]:
                path = os.path.join(directory, name)
                entry = tar.gettarinfo(path, os.path.relpath(path, rootfs))
                entry.mtime, entry.uname, entry.gname = 0, "", ""
                if entry.isreg():
                    with open(path, "rb") as content:
                        tar.addfile(entry, content)
                else:
                    tar.addfile(entry)
    return out.getvalue()


def write_image(rootfs: str, name: str, out: str, config: dict) -> str:
    """Write the archive atomically; its layer's digest."""
    data = layer(rootfs)
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    image_config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": EPOCH, "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": EPOCH, "created_by": "scripts/image.py"}],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(image_config).hexdigest() + ".json"
    layer_name = f"{diff_id[7:]}/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [name],
                            "Layers": [layer_name]}]).encode()
    with tarfile.open(out + ".tmp", "w") as archive:
        for member, content in ((config_name, image_config), (layer_name, data),
                                ("manifest.json", manifest)):
            entry = tarfile.TarInfo(member)
            entry.size, entry.mode = len(content), 0o644
            archive.addfile(entry, io.BytesIO(content))
    os.replace(out + ".tmp", out)
    return diff_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rootfs")
    parser.add_argument("name")
    parser.add_argument("out")
    parser.add_argument("--entrypoint", type=json.loads)
    parser.add_argument("--cmd", type=json.loads)
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--user")
    args = parser.parse_args()
    config: dict = {"Env": args.env or ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"]}
    if args.entrypoint:
        config["Entrypoint"] = args.entrypoint
    if args.cmd:
        config["Cmd"] = args.cmd
    if args.user:
        config["User"] = args.user
    digest = write_image(args.rootfs, args.name, args.out, config)
    print(f"{args.out}: {args.name} (layer {digest[:19]})")


if __name__ == "__main__":
    main()
