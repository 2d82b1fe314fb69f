"""``kcm install``: put the self-contained kcm on the host for workload containers."""

import sys

from kcm import log
from kcm.install import build_into, bundle_source, install
from kcm.output import emit


def run(args) -> int:
    source = bundle_source(args.source)
    if source is None:
        log.info(f"no kcm bundle found; building one from {sys.executable}")
        staging = build_into(args.install_dir)
        link, changed = install(staging, args.install_dir, built=True)
        source = f"built from {sys.executable}"
    else:
        link, changed = install(source, args.install_dir)
    if not changed:
        log.info(f"{link} is already this kcm; nothing to do")
    emit({"installed": link, "from": source, "changed": changed}, args.output)
    return 0
