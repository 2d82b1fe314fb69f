"""``kcm manifests``: every object valid against the real Kubernetes schemas, least
privilege, and the operator manual's per-step templates."""

import base64

import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from kcm.certs import mint
from kcm.manifests import (
    NODE_AGENT,
    Settings,
    WebhookTls,
    cluster_objects,
    step_objects,
    to_yaml,
    webhook_service_names,
)

VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())


def render(kcm, *args) -> list[dict]:
    result = kcm.run("manifests", *args, check=True)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def containers_of(obj: dict) -> list[dict]:
    spec = obj["spec"]["template"]["spec"] if "template" in obj.get("spec", {}) else obj["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]


@pytest.mark.parametrize("args", [[], ["--no-webhook"], ["--taint", "--namespace=cpu",
                                  "--node-selector=node-role/dp=yes", "--num-dp-cores=8"]])
def test_every_object_is_valid_for_1_30_and_the_newest_schemas(kcm, args):
    objects = render(kcm, *args)
    assert objects
    for obj in objects:
        for version in VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("step", ["init-pod", "discover-pod", "reconcile"])
def test_step_templates_are_valid(kcm, step):
    for obj in render(kcm, f"--only={step}"):
        for version in VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_everything_a_cluster_needs_in_apply_order(kcm):
    kinds = [(obj["kind"], obj["metadata"]["name"]) for obj in render(kcm)]
    assert kinds == [
        ("Namespace", "kcm-system"), ("ServiceAccount", "kcm-node"),
        ("ClusterRole", "kcm-node"), ("ClusterRoleBinding", "kcm-node"),
        ("CustomResourceDefinition", "nodereports.kcm.dev"), ("DaemonSet", "kcm-node"),
        ("ServiceAccount", "kcm-webhook"), ("Secret", "kcm-webhook-tls"),
        ("Deployment", "kcm-webhook"), ("Service", "kcm-webhook"),
        ("MutatingWebhookConfiguration", "kcm-webhook")]


def walk(value):
    yield value
    children = value.values() if isinstance(value, dict) else value if isinstance(
        value, list) else []
    for child in children:
        yield from walk(child)


def test_objects_are_written_as_the_server_stores_them():
    """No field the API server drops or fills in (so a re-run finds them unchanged, and
    server-side apply finds the ports' keys): no ``readOnly: false``, every port with
    its protocol."""
    objects = cluster_objects(Settings(), WebhookTls("ca", "cert", "key"))
    nodes = [node for obj in objects for node in walk(obj) if isinstance(node, dict)]
    assert not [node for node in nodes if node.get("readOnly") is False]
    ports = [port for node in nodes for port in node.get("ports") or []
             if isinstance(port, dict)]
    assert ports and all(port.get("protocol") == "TCP" for port in ports)


def test_rbac_is_least_privilege():
    role = next(o for o in cluster_objects(Settings(webhook=False)) if o["kind"] == "ClusterRole")
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert granted == {
        ("", "nodes", "get"), ("", "nodes", "patch"), ("", "nodes/status", "patch"),
        ("kcm.dev", "nodereports", "get"), ("kcm.dev", "nodereports", "create"),
        ("kcm.dev", "nodereports", "patch"), ("kcm.dev", "nodereports", "delete"),
        ("kcm.dev", "nodereports/status", "patch")}
    assert not any("*" in item for triple in granted for item in triple)


def test_the_daemonset_runs_the_steps_with_minimal_host_access(kcm):
    daemonset = next(o for o in render(kcm) if o["kind"] == "DaemonSet")
    spec = pod_spec(daemonset)
    assert [c["name"] for c in spec["initContainers"]] == ["init", "install", "discover"]
    assert [c["name"] for c in spec["containers"]] == ["reconcile", "enforce", "node-report"]
    assert spec["tolerations"] == [{"key": "kcm.dev/node", "operator": "Equal", "value": "true",
                                    "effect": "NoSchedule"}]
    assert spec["nodeSelector"] == {"kcm.dev/enabled": "true"}
    writable = {c["name"]: sorted(m["mountPath"] for m in c["volumeMounts"]
                                  if not m.get("readOnly")) for c in containers_of(daemonset)}
    # Only enforce writes the host's cgroups and /proc (for /proc/irq).
    assert writable == {"init": ["/etc/kcm"], "install": ["/opt/bin"], "discover": [],
                        "reconcile": ["/etc/kcm"], "node-report": [],
                        "enforce": ["/etc/kcm", "/host/proc-rw", "/sys/fs/cgroup"]}
    cgroups = {c["name"] for c in containers_of(daemonset)
               if any(m["mountPath"] == "/sys/fs/cgroup" for m in c["volumeMounts"])}
    assert cgroups == {"enforce", "node-report"}  # node-report reads what enforce achieved
    for container in containers_of(daemonset):
        assert container["command"] == ["kcm"]
        assert container["args"][0] in ("init", "install", "discover", "reconcile", "enforce",
                                        "node-report")
        proc = next(m for m in container["volumeMounts"] if m["name"] == "host-proc")
        assert proc.get("readOnly") is (None if container["name"] == "enforce" else True)
        security = container["securityContext"]
        assert security["privileged"] is False and security["allowPrivilegeEscalation"] is False
        # enforce alone may set other users' threads' affinity (kept across a cpuset change)
        assert security["capabilities"] == ({"drop": ["ALL"], "add": ["SYS_NICE"]}
                                            if container["name"] == "enforce"
                                            else {"drop": ["ALL"]})
    assert spec["hostPID"] is True  # the cgroups' task lists name host thread IDs


def test_no_shell_strings_anywhere(kcm):
    text = kcm.run("manifests", check=True).stdout
    assert "sh -c" not in text and "/bin/sh" not in text and "bash" not in text
    for obj in render(kcm):
        if obj["kind"] in ("DaemonSet", "Deployment", "Pod"):
            for container in containers_of(obj):
                assert isinstance(container["args"], list)


def test_the_webhook_is_scoped_fails_closed_and_trusts_its_own_ca(kcm):
    objects = render(kcm)
    configuration = next(o for o in objects if o["kind"] == "MutatingWebhookConfiguration")
    hook = configuration["webhooks"][0]
    assert hook["failurePolicy"] == "Fail"
    excluded = {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                "values": ["kube-system", "kcm-system"]}
    assert excluded in hook["namespaceSelector"]["matchExpressions"]
    assert "kcm.dev/pool" in hook["matchConditions"][0]["expression"]
    secret = next(o for o in objects if o["kind"] == "Secret")
    ca = x509.load_pem_x509_certificate(base64.b64decode(hook["clientConfig"]["caBundle"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    assert cert.issuer == ca.subject
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kcm-webhook.kcm-system.svc" in names.get_values_for_type(x509.DNSName)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    spec = pod_spec(deployment)
    assert spec["automountServiceAccountToken"] is False
    assert "tolerations" not in spec
    assert spec["containers"][0]["securityContext"]["runAsNonRoot"] is True


def test_a_kept_certificate_directory_makes_rendering_repeatable(kcm, tmp_path):
    first = kcm.run("manifests", f"--webhook-cert-dir={tmp_path / 'certs'}", check=True).stdout
    second = kcm.run("manifests", f"--webhook-cert-dir={tmp_path / 'certs'}", check=True).stdout
    assert first == second
    assert (tmp_path / "certs/tls.key").stat().st_mode & 0o077 == 0


def test_the_manuals_step_templates_keep_their_volumes_and_environment():
    settings = Settings()
    for step, command in (("init-pod", "init"), ("discover-pod", "discover"),
                          ("reconcile", "reconcile")):
        (obj,) = step_objects(settings, step)
        spec = pod_spec(obj)
        (container,) = spec["containers"]
        assert container["args"][0] == command
        volumes = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"]}
        assert volumes == {"kcm-conf": "/etc/kcm", "host-proc": "/proc"}
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["KCM_CONF_DIR"] == "/etc/kcm" and env["KCM_PROC_FS"] == "/host/proc"
        if step == "reconcile":
            assert env["KCM_RECONCILE_SLEEP_TIME"] == "30"
            assert obj["kind"] == "DaemonSet"
        if step == "discover-pod":
            assert any(e["name"] == "NODE_NAME" for e in container["env"])


def test_yaml_round_trips():
    objects = cluster_objects(Settings(), mint(webhook_service_names(Settings())))
    assert list(yaml.safe_load_all(to_yaml(objects))) == objects
    assert NODE_AGENT == "kcm-node"
