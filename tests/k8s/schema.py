"""What a real API server prunes: fields of a document its structural schema does not
declare. A NodeReport field missing from the CRD would silently vanish in a cluster."""

from kcm.manifests import node_report_crd


def pruned_fields(document: object, schema: dict, path: str = "") -> list[str]:
    """Paths in ``document`` that ``schema`` does not declare (as the server prunes)."""
    if isinstance(document, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return []
        missing = []
        for key, value in document.items():
            if properties is not None and key in properties:
                missing += pruned_fields(value, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                missing += pruned_fields(value, extra, f"{path}.{key}")
            else:
                missing.append(f"{path}.{key}")
        return missing
    if isinstance(document, list):
        items = schema.get("items", {})
        return [field for index, value in enumerate(document)
                for field in pruned_fields(value, items, f"{path}[{index}]")]
    return []


def report_fields_the_crd_prunes(report: dict) -> list[str]:
    schema = node_report_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return pruned_fields(report, schema["properties"]["spec"], "spec")

