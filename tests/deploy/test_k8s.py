"""deploy/k8s: every manifest valid against its schema (Kubernetes' own, Strimzi's CRDs),
the kustomization complete, and the manifests agreeing with the code: topics as
streams/topics.py makes them, workers bounded by partitions, selectors that select."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from ioc.settings import KafkaSettings, Settings
from streams.catalog import DOMAINS
from streams.topics import topic_specs
from tests.deploy.test_compose import field_exists
from tests.utils.k8s import K8S, ManifestError, documents, validate

EXAMPLES = {"secrets.example.yaml"}
# Secrets no file here holds: made by Strimzi (ioc-app, city-cluster-ca-cert) or by the
# operator of the cluster (the examples).
EXTERNAL_SECRETS = {"ioc-app", "city-cluster-ca-cert"}


def manifest_files() -> list[Path]:
    return sorted(
        p
        for p in K8S.rglob("*.yaml")
        if p.name != "kustomization.yaml" and "schemas" not in p.relative_to(K8S).parts
    )


def resources() -> list[dict[str, Any]]:
    """Every document the kustomization applies."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [d for name in kustomization["resources"] for d in documents(K8S / name)]


def find(kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in resources() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_fits_its_schema(path: Path) -> None:
    docs = documents(path)
    assert docs
    for document in docs:
        validate(document)


def test_the_kustomization_lists_every_manifest_but_the_examples() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {str(p.relative_to(K8S)) for p in manifest_files()}
    assert listed == on_disk - EXAMPLES
    assert kustomization["images"][0]["name"] == "smart-city-ioc"


def topics_from_the_code() -> dict[str, tuple[int, dict[str, str]]]:
    partitions = int(find("ConfigMap", "ioc-settings")["data"]["IOC_KAFKA__PARTITIONS"])
    settings = Settings(_env_file=None, kafka=KafkaSettings(partitions=partitions))
    return {s.name: (s.partitions, s.config) for s in topic_specs(settings, DOMAINS)}


def test_kafka_topics_are_the_ones_the_code_declares() -> None:
    declared = {d["spec"]["topicName"]: d for d in resources() if d["kind"] == "KafkaTopic"}
    expected = topics_from_the_code()
    assert set(declared) == set(expected)
    for name, (partitions, config) in expected.items():
        spec = declared[name]["spec"]
        assert spec["partitions"] == partitions, name
        # Every setting the code gives the topic, with the same value (Strimzi may add
        # others, such as min.insync.replicas).
        assert {k: str(spec["config"].get(k)) for k in config} == config, name
        assert declared[name]["metadata"]["labels"]["strimzi.io/cluster"] == "city"
    assert declared["ioc.state"]["spec"]["config"]["cleanup.policy"] == "compact"
    assert declared["ioc.traffic.events"]["spec"]["config"]["retention.ms"] == "-1"


def test_strimzi_resources_belong_to_the_kafka_cluster() -> None:
    kafka = find("Kafka", "city")
    listener = kafka["spec"]["kafka"]["listeners"][0]
    settings = find("ConfigMap", "ioc-settings")["data"]
    assert settings["KAFKA_BOOTSTRAP_SERVERS"] == f"city-kafka-bootstrap:{listener['port']}"
    assert listener["tls"] is True
    assert settings["IOC_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
    assert listener["authentication"]["type"] == settings["IOC_KAFKA__SASL_MECHANISM"].lower()
    user = find("KafkaUser", settings["IOC_KAFKA__SASL_USERNAME"])
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    for document in resources():
        if document["apiVersion"].startswith("kafka.strimzi.io/") and document["kind"] != "Kafka":
            assert document["metadata"]["labels"]["strimzi.io/cluster"] == "city"
    pool = find("KafkaNodePool", "dual-role")
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}


def test_workers_are_bounded_by_partitions_and_budgeted() -> None:
    partitions = int(find("ConfigMap", "ioc-settings")["data"]["IOC_KAFKA__PARTITIONS"])
    worker = find("Deployment", "ioc-worker")
    assert 1 <= worker["spec"]["replicas"] <= partitions
    text = (K8S / "app" / "worker.yaml").read_text()
    assert "BOUNDED BY THE PARTITION" in text
    budget = find("PodDisruptionBudget", "ioc-worker")
    assert budget["spec"]["selector"] == worker["spec"]["selector"]
    assert budget["spec"]["maxUnavailable"] == 1


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def test_the_api_service_and_autoscaler_reach_the_api() -> None:
    api = find("Deployment", "ioc-api")
    service = find("Service", "ioc-api")
    assert service["spec"]["selector"].items() <= pod_labels(api).items()
    hpa = find("HorizontalPodAutoscaler", "ioc-api")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "ioc-api")
    assert hpa["spec"]["minReplicas"] >= 2
    for document in resources():
        selector = document.get("spec", {}).get("selector", {})
        labels = selector.get("matchLabels", selector if document["kind"] == "Service" else {})
        if labels and document["kind"] != "Service" and "template" in document["spec"]:
            assert labels.items() <= pod_labels(document).items(), document["metadata"]["name"]


def containers() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    found = []
    for document in resources():
        spec = document.get("spec", {})
        template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get(
            "template"
        )
        if template:
            for container in template["spec"]["containers"]:
                found.append((document["metadata"]["name"], template["spec"], container))
    return found


def test_roles_run_the_image_as_non_root_with_their_command() -> None:
    roles = {}
    for name, pod, container in containers():
        if container["image"] != "smart-city-ioc":
            continue
        roles[name] = container["args"][0]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert roles == {"ioc-migrate": "migrate", "ioc-worker": "worker", "ioc-api": "api"}


def test_settings_are_real_and_secrets_come_from_secrets() -> None:
    config = find("ConfigMap", "ioc-settings")["data"]
    for name in config:
        if name.startswith("IOC_"):
            assert field_exists(name), f"ConfigMap: {name} is no setting"
        assert "PASSWORD" not in name
        assert name != "DATABASE_URL"
    defined = {
        d["metadata"]["name"]
        for p in K8S.glob("*.yaml")
        for d in documents(p)
        if d["kind"] == "Secret"
    }
    for owner, pod, container in containers():
        for variable in container.get("env", []):
            if "value" in variable:
                assert "PASSWORD" not in variable["name"], owner
                continue
            ref = variable["valueFrom"].get("secretKeyRef")
            if ref:
                assert ref["name"] in defined | EXTERNAL_SECRETS, f"{owner}: {ref['name']}"
            if variable["name"].startswith("IOC_"):
                assert field_exists(variable["name"]), f"{owner}: {variable['name']}"
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in defined | EXTERNAL_SECRETS


def test_the_settings_of_the_manifests_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What a worker pod gets as environment makes valid settings (the CA file stands in
    for the mounted Secret)."""
    for name in list(os.environ):
        if name.startswith("IOC_"):
            monkeypatch.delenv(name)
    ca = tmp_path / "ca.crt"
    ca.write_text("stand-in")
    for name, value in find("ConfigMap", "ioc-settings")["data"].items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("IOC_KAFKA__SSL_CAFILE", str(ca))
    monkeypatch.setenv("IOC_KAFKA__SASL_PASSWORD", "from-the-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://ioc:pw@timescaledb:5432/ioc")
    settings = Settings(_env_file=None)
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert settings.kafka.create_topics is False
    assert settings.kafka.partitions == 12


def broken(kind: str, name: str, change: Any) -> dict[str, Any]:
    document = copy.deepcopy(find(kind, name))
    change(document)
    return document


@pytest.mark.parametrize(
    ("kind", "name", "change", "reason"),
    [
        # A typo in a KafkaTopic field.
        (
            "KafkaTopic",
            "ioc-state",
            lambda d: d["spec"].update(partitons=d["spec"].pop("partitions")),
            "partitons",
        ),
        ("KafkaTopic", "ioc-state", lambda d: d["spec"].update(partitions=0), "minimum"),
        # SCRAM-SHA-256 is not a listener authentication Strimzi offers.
        (
            "Kafka",
            "city",
            lambda d: d["spec"]["kafka"]["listeners"][0]["authentication"].update(
                type="scram-sha-256"
            ),
            "scram-sha-256",
        ),
        ("KafkaNodePool", "dual-role", lambda d: d["spec"].pop("roles"), "roles"),
        ("Deployment", "ioc-worker", lambda d: d["spec"].update(replicas="three"), "three"),
        (
            "Deployment",
            "ioc-api",
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagePullPolicy=3),
            "imagePullPolicy",
        ),
        (
            "HorizontalPodAutoscaler",
            "ioc-api",
            lambda d: d["spec"].update(maxReplica=8),
            "maxReplica",
        ),
        ("ConfigMap", "ioc-settings", lambda d: d.update(data=["not", "a", "map"]), "data"),
    ],
)
def test_a_broken_manifest_is_refused(kind: str, name: str, change: Any, reason: str) -> None:
    validate(find(kind, name))
    with pytest.raises(ManifestError, match=reason):
        validate(broken(kind, name, change))


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ManifestError, match="KafkaWidget"):
        validate(
            {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaWidget", "metadata": {"name": "x"}}
        )
    with pytest.raises(ManifestError, match="Deploymint"):
        validate({"apiVersion": "apps/v1", "kind": "Deploymint", "metadata": {"name": "x"}})
