"""``kcm manifests``: print everything a cluster needs as multi-document YAML."""

from kcm.certs import webhook_tls
from kcm.manifests import cluster_objects, settings_from, step_objects, to_yaml


def run(args) -> int:
    settings = settings_from(args)
    if args.only:
        objects = step_objects(settings, args.only)
    else:
        objects = cluster_objects(settings, webhook_tls(settings, args.webhook_cert_dir))
    print(to_yaml(objects), end="")
    return 0
