"""``kcm install``: put the self-contained kcm on the host for workload containers."""

import json

from kcm import log
from kcm.install import bundle_source, install


def run(args) -> int:
    source = bundle_source(args.source)
    link, changed = install(source, args.install_dir)
    if not changed:
        log.info(f"{link} is already this kcm; nothing to do")
    print(json.dumps({"installed": link, "from": source, "changed": changed}, indent=2))
    return 0
