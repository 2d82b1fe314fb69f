"""``kcm install``: put the self-contained kcm on the host for workload containers."""

from kcm import log
from kcm.install import bundle_source, install
from kcm.output import emit


def run(args) -> int:
    source = bundle_source(args.source)
    link, changed = install(source, args.install_dir)
    if not changed:
        log.info(f"{link} is already this kcm; nothing to do")
    emit({"installed": link, "from": source, "changed": changed}, args.output)
    return 0
