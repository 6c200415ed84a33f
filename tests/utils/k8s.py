"""Offline validation of the Kubernetes manifests: core kinds against the Kubernetes
JSON schemas kubernetes-validate bundles, Strimzi's kinds against the CRD schemas vendored
in deploy/k8s/schemas/strimzi/ (made by its regenerate.sh from the Strimzi release)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import yaml  # type: ignore[import-untyped]

from tests.utils.services import ROOT

K8S = ROOT / "deploy" / "k8s"
STRIMZI_SCHEMAS = K8S / "schemas" / "strimzi"
# The oldest Kubernetes the manifests promise to fit (autoscaling/v2, policy/v1, batch/v1
# with ttlSecondsAfterFinished are all older than this).
KUBERNETES_VERSION = "1.30"


class ManifestError(ValueError):
    """A manifest that its schema refuses."""


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of one manifest file (empty ones dropped)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def closed(schema: Any) -> Any:
    """The schema with every object that lists its properties closed to others.

    The API server drops unknown fields of a custom resource (and `kubectl apply` refuses
    them under strict field validation); a typo must fail here the same way.
    """
    if isinstance(schema, dict):
        out = {k: closed(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


@cache
def strimzi_schema(kind: str, version: str) -> dict[str, Any]:
    path = STRIMZI_SCHEMAS / f"{kind.lower()}.{version}.json"
    if not path.exists():
        raise ManifestError(f"no vendored Strimzi schema for {kind} {version}")
    schema = json.loads(path.read_text())
    schema.pop("x-source", None)
    result: dict[str, Any] = closed(schema)
    return result


def validate(document: dict[str, Any]) -> None:
    """Raise ManifestError with the path and reason when the document's schema refuses it."""
    api_version, kind = document.get("apiVersion", ""), document.get("kind", "")
    name = document.get("metadata", {}).get("name", "?")
    if api_version.startswith("kafka.strimzi.io/"):
        schema = strimzi_schema(kind, api_version.split("/", 1)[1])
        # metadata is the API server's ObjectMeta, not part of the CRD's schema.
        body = copy.deepcopy(document)
        meta = body.pop("metadata", {})
        if not isinstance(meta.get("name"), str):
            raise ManifestError(f"{kind}/{name}: metadata.name is required")
        try:
            jsonschema.Draft7Validator(schema).validate(body)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            raise ManifestError(f"{kind}/{name}: {where}: {exc.message}") from None
        return
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise ManifestError(f"{kind}/{name}: {where}: {exc.message}") from None
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise ManifestError(exc.message) from None
