"""``kcm webhook``: serve the mutating admission webhook until SIGTERM."""

import signal
import threading

from kcm import log
from kcm.mutate import WorkloadSettings
from kcm.webhook import Certificates, serve


def run(args) -> int:
    certificates = Certificates(args.tls_cert_file, args.tls_private_key_file)
    settings = WorkloadSettings(conf_dir=args.conf_dir, install_dir=args.install_dir,
                                resource_prefix=args.resource_prefix)
    server = serve(args.bind_address, args.secure_port, certificates, settings)

    def stop(_signum, _frame) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    log.info(f"serving admission reviews on https://{host}:{port}/mutate")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0
