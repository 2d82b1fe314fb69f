"""TLS material for the webhook: a private CA and a serving certificate (cryptography).

``kcm manifests`` mints them so the webhook works out of the box; with a directory
they are kept there and reused, so rendering again yields the same objects (GitOps),
and ``cluster-init`` reuses the certificate already in the cluster.
"""

import os

from kcm.errors import KcmError
from kcm.manifests import Settings, WebhookTls, webhook_service_names

VALID_DAYS = 3650


def mint(names: list[str], days: int = VALID_DAYS) -> WebhookTls:
    """A new CA, and a certificate it signs for ``names`` (DNS names or IP addresses)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kcm webhook CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return WebhookTls(
        ca=ca.public_bytes(pem).decode(),
        cert=cert.public_bytes(pem).decode(),
        key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode(),
    )


def load_or_mint(directory: str, names: list[str]) -> WebhookTls:
    """The TLS material kept in ``directory`` (ca.crt, tls.crt, tls.key), minted there
    first when missing."""
    paths = {part: os.path.join(directory, f"{part_file}")
             for part, part_file in (("ca", "ca.crt"), ("cert", "tls.crt"), ("key", "tls.key"))}
    try:
        if all(os.path.exists(path) for path in paths.values()):
            texts = {part: open(path).read() for part, path in paths.items()}
            return WebhookTls(**texts)
        tls = mint(names)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        for part, path in paths.items():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(getattr(tls, part))
        return tls
    except OSError as error:
        raise KcmError(f"cannot keep the webhook certificate in {directory}: "
                       f"{error.strerror}") from None


def webhook_tls(settings: Settings, cert_dir: str | None) -> WebhookTls | None:
    """The webhook's TLS for these settings: from ``cert_dir`` (minted there once),
    or minted in memory; None without a webhook."""
    if not settings.webhook:
        return None
    names = webhook_service_names(settings)
    return load_or_mint(cert_dir, names) if cert_dir else mint(names)
