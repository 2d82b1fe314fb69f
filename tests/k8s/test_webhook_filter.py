"""The webhook's matchConditions (CEL, evaluated by the API server) and
``mutate.is_workload`` (what the webhook patches) accept exactly the same pods."""

import celpy
from hypothesis import given
from hypothesis import strategies as st

from kcm.manifests import Settings, WebhookTls, cluster_objects
from kcm.mutate import WorkloadSettings, is_workload

PREFIX = "example.com"
RESOURCE_NAMES = st.sampled_from(["cpu", "memory", f"{PREFIX}/dp-cores", f"{PREFIX}/other",
                                  "kcm.dev/dp-cores", "example.org/dp-cores"])
RESOURCES = st.fixed_dictionaries({}, optional={
    "requests": st.dictionaries(RESOURCE_NAMES, st.just("1"), max_size=3),
    "limits": st.dictionaries(RESOURCE_NAMES, st.just("1"), max_size=3),
})
CONTAINER = st.fixed_dictionaries({"name": st.just("c")}, optional={"resources": RESOURCES})
POD = st.fixed_dictionaries(
    {"spec": st.fixed_dictionaries({}, optional={
        "containers": st.lists(CONTAINER, max_size=2),
        "initContainers": st.lists(CONTAINER, max_size=2)})},
    optional={"metadata": st.fixed_dictionaries({}, optional={
        "annotations": st.dictionaries(st.sampled_from(["kcm.dev/pool", "other"]),
                                       st.just("dp"), max_size=2)})},
)


def shipped_condition() -> str:
    objects = cluster_objects(Settings(resource_prefix=PREFIX), WebhookTls("ca", "cert", "key"))
    [configuration] = [o for o in objects if o["kind"] == "MutatingWebhookConfiguration"]
    [condition] = configuration["webhooks"][0]["matchConditions"]
    return condition["expression"]


PROGRAM = celpy.Environment().program(celpy.Environment().compile(shipped_condition()))


def sent_to_webhook(pod: dict) -> bool:
    """What the API server decides: ``metadata`` always exists on a stored pod."""
    stored = {"metadata": {}, **pod}
    return bool(PROGRAM.evaluate({"object": celpy.json_to_cel(stored)}))


@given(POD)
def test_the_api_server_sends_exactly_the_pods_the_webhook_patches(pod):
    assert sent_to_webhook(pod) == is_workload(pod, WorkloadSettings(resource_prefix=PREFIX))


def test_a_pod_whose_only_kcm_request_is_on_an_init_container_reaches_the_webhook():
    pod = {"spec": {"containers": [{"name": "app"}], "initContainers": [
        {"name": "setup", "resources": {"limits": {f"{PREFIX}/dp-cores": "1"}}}]}}
    assert sent_to_webhook(pod)
    assert is_workload(pod, WorkloadSettings(resource_prefix=PREFIX))


def test_a_pod_without_kcm_requests_or_annotation_does_not_reach_the_webhook():
    pod = {"metadata": {"annotations": {"other": "x"}},
           "spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "1"}}}]}}
    assert not sent_to_webhook(pod)
