"""``kcm manifests``: print everything a cluster needs as multi-document YAML."""

from kcm.certs import load_or_mint, mint
from kcm.manifests import (
    Settings,
    cluster_objects,
    step_objects,
    to_yaml,
    webhook_service_names,
)


def settings_from(args) -> Settings:
    label, _, value = args.node_selector.partition("=")
    return Settings(
        namespace=args.namespace, image=args.image, conf_dir=args.conf_dir,
        install_dir=args.install_dir, num_dp_cores=args.num_dp_cores,
        num_cp_cores=args.num_cp_cores, dp_mode=args.dp_mode, cp_mode=args.cp_mode,
        reconcile_interval=args.reconcile_interval, report_interval=args.report_interval,
        node_selector=(label, value), resource_prefix=args.resource_prefix, taint=args.taint,
        webhook=not args.no_webhook,
    )


def webhook_tls(settings: Settings, cert_dir: str | None):
    if not settings.webhook:
        return None
    names = webhook_service_names(settings)
    return load_or_mint(cert_dir, names) if cert_dir else mint(names)


def run(args) -> int:
    settings = settings_from(args)
    if args.only:
        objects = step_objects(settings, args.only)
    else:
        objects = cluster_objects(settings, webhook_tls(settings, args.webhook_cert_dir))
    print(to_yaml(objects), end="")
    return 0
