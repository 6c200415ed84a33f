"""deploy/k8s: every manifest valid against its schema (Kubernetes' own, Strimzi's CRDs),
the kustomization complete, and the manifests agreeing with the code: topics as
streams/topics.py and the incident tier's Faust app make them, workers bounded by
partitions, selectors that select, Kafka users allowed what their role does."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import faust
import pytest
import yaml  # type: ignore[import-untyped]

from contract.catalog import DOMAINS
from ioc.settings import LIVE_NAMESPACE, KafkaSettings, Settings
from streams.incidents.app import LEVELS, build_app
from streams.incidents.rules import load_correlation_rules
from streams.topics import ALERTS_TOPIC, AREA_ACTIVITY_TOPIC, INCIDENTS_TOPIC, topic_specs
from tests.utils.k8s import K8S, ManifestError, documents, validate
from tests.utils.setting_names import field_exists

EXAMPLES = {"secrets.example.yaml"}


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


def external_secrets() -> set[str]:
    """Secrets no file here holds: Strimzi's cluster CA and one per KafkaUser (its
    password); the examples are made by the operator of the cluster."""
    users = {d["metadata"]["name"] for d in resources() if d["kind"] == "KafkaUser"}
    return {"city-cluster-ca-cert"} | users


def live_settings() -> Settings:
    """The live namespace's settings as the ConfigMap gives them."""
    config = find("ConfigMap", "ioc-settings")["data"]
    kafka = KafkaSettings(
        partitions=int(config["IOC_KAFKA__PARTITIONS"]),
        replication_factor=int(config["IOC_KAFKA__REPLICATION_FACTOR"]),
    )
    return Settings(_env_file=None, namespace=LIVE_NAMESPACE, kafka=kafka)


def topics_from_the_code() -> dict[str, tuple[int, dict[str, str]]]:
    settings = live_settings()
    return {s.name: (s.partitions, s.config) for s in topic_specs(settings, DOMAINS)}


@dataclass(frozen=True)
class FaustTopic:
    """An internal topic the incident tier's Faust app declares itself."""

    name: str
    partitions: int | None
    config: dict[str, str]
    written: bool


@cache
def incident_tier() -> faust.App:
    """The incident tier's Faust app as `ioc incidents` builds it for the live namespace
    (built only: nothing connects)."""
    settings = live_settings()
    return build_app(settings, load_correlation_rules(settings.streams.correlation_dir))


def incident_tier_topics() -> dict[str, FaustTopic]:
    """The internal topics of the incident tier, read from the app: its tables'
    changelogs, the repartition topics its agents re-key into, its assignor's topic."""
    app = incident_tier()
    found: dict[str, FaustTopic] = {}
    for table in app.tables.values():
        changelog = table.changelog_topic
        flags = (("compact", changelog.compacting), ("delete", changelog.deleting))
        policy = [p for p, on in flags if on]
        config = {"cleanup.policy": ",".join(policy)} if policy else {}
        name = changelog.get_topic_name()
        found[name] = FaustTopic(name, changelog.partitions, config, True)
    for agent in app.agents.values():
        channel = agent.channel
        if isinstance(channel, faust.TopicT) and channel.internal:
            name = channel.get_topic_name()
            found[name] = FaustTopic(name, channel.partitions, {}, True)
    leader = app._leader_assignor._leader_topic  # type: ignore[attr-defined]
    found[leader.get_topic_name()] = FaustTopic(leader.get_topic_name(), 1, {}, False)
    return found


def test_every_internal_topic_of_the_incident_tier_is_found() -> None:
    """The app is read for one repartition topic per level (each level's agent reads its
    own), one changelog per table and the assignor's topic, as `ioc incidents` makes them on a
    broker: if the app kept a topic where incident_tier_topics does not look, this fails
    rather than the topic going undeclared."""
    app = incident_tier()
    found = incident_tier_topics()
    repartition = {n for n in found if n.startswith(f"{ALERTS_TOPIC}.")}
    # An agent per level, plus the one that re-keys ioc.alerts into their topics and the
    # one that reads operators' actions back from ioc.incidents (no topics of their own).
    assert len(repartition) == len(LEVELS) == len(app.agents) - 2, sorted(found)
    assert len(found) == len(LEVELS) + len(app.tables) + 1, sorted(found)
    assert found[f"{app.conf.id}-__assignor-__leader"].partitions == 1
    assert app.conf.id == "ioc-live-incidents"


def test_kafka_topics_are_the_ones_the_code_declares() -> None:
    declared = {d["spec"]["topicName"]: d for d in resources() if d["kind"] == "KafkaTopic"}
    expected = topics_from_the_code() | {
        t.name: (t.partitions, t.config) for t in incident_tier_topics().values()
    }
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
    for name in incident_tier_topics():
        if name.endswith("-changelog"):
            assert declared[name]["spec"]["config"]["cleanup.policy"] == "compact", name
    # ioc.incidents is kept like ioc.alerts.
    assert declared["ioc.incidents"]["spec"] == declared["ioc.alerts"]["spec"] | {
        "topicName": "ioc.incidents"
    }


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
    for name in ("ioc-worker", "ioc-incidents"):
        budget = find("PodDisruptionBudget", name)
        assert budget["spec"]["selector"] == find("Deployment", name)["spec"]["selector"]
        assert budget["spec"]["maxUnavailable"] == 1


def container_of(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod spec and the one container of a Deployment."""
    pod = find("Deployment", name)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def test_the_incident_tier_runs_on_kafka_alone_with_its_own_user() -> None:
    partitions = int(find("ConfigMap", "ioc-settings")["data"]["IOC_KAFKA__PARTITIONS"])
    incidents = find("Deployment", "ioc-incidents")
    # One carries the load, a second is for failover; more than the partitions idle.
    assert 2 <= incidents["spec"]["replicas"] <= partitions
    pod, container = container_of("ioc-incidents")
    assert container["args"] == ["incidents"]
    env = {v["name"]: v for v in container["env"]}
    assert "DATABASE_URL" not in env
    assert env["IOC_KAFKA__SASL_USERNAME"]["value"] == "ioc-incidents"
    secret = env["IOC_KAFKA__SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "ioc-incidents", "key": "password"}
    find("KafkaUser", "ioc-incidents")
    # No port, so nothing for an HTTP probe (the file says why there is none).
    assert "ports" not in container
    assert not {"livenessProbe", "readinessProbe", "startupProbe"} & set(container)
    assert "No probes" in (K8S / "app" / "incidents.yaml").read_text()
    assert pod["enableServiceLinks"] is False


def test_the_faust_data_directory_is_writable_in_the_pod() -> None:
    """Faust makes its data directory under the state dir at start; the root filesystem
    is read-only, so the pod's IOC_STATE_DIR must lie on a mounted volume."""
    pod, container = container_of("ioc-incidents")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env.get("IOC_STATE_DIR"), "the incidents pod sets no IOC_STATE_DIR"
    datadir = Path(env["IOC_STATE_DIR"])
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = [m for m in container["volumeMounts"] if datadir.is_relative_to(m["mountPath"])]
    assert mounts, f"{datadir} is on no volume"
    assert "emptyDir" in volumes[mounts[0]["name"]]
    assert not mounts[0].get("readOnly", False)


@dataclass(frozen=True)
class Acl:
    resource: str
    name: str
    pattern: str
    operations: frozenset[str]

    def covers(self, resource: str, name: str) -> bool:
        if self.resource != resource:
            return False
        if self.pattern == "prefix":
            return name.startswith(self.name)
        return self.name == name


def acls(user: str) -> list[Acl]:
    spec = find("KafkaUser", user)["spec"]["authorization"]
    assert spec["type"] == "simple"
    return [
        Acl(
            a["resource"]["type"],
            a["resource"].get("name", ""),
            a["resource"].get("patternType", "literal"),
            frozenset(a["operations"]),
        )
        for a in spec["acls"]
    ]


def allowed(user: str, resource: str, name: str) -> set[str]:
    """Operations the user's ACLs allow on a resource (explicitly: Kafka would also
    imply Describe from Read and Write, the manifests list it)."""
    return {op for acl in acls(user) if acl.covers(resource, name) for op in acl.operations}


def incident_tier_needs() -> dict[tuple[str, str], set[str]]:
    """What `ioc incidents` does in the live namespace, read from the code: checks every
    topic at start, reads alerts, writes and reads incidents, declares (creates), reads and writes
    its internal topics, consumes in its group."""
    settings = live_settings()
    needs: dict[tuple[str, str], set[str]] = {
        ("topic", name): {"Describe"} for name in topics_from_the_code()
    }
    needs[("topic", settings.topic(ALERTS_TOPIC))] |= {"Read"}
    # Writes incidents; reads operators' resolutions and merges back (its operators agent).
    needs[("topic", settings.topic(INCIDENTS_TOPIC))] |= {"Read", "Write"}
    # Writes the places' alerts and incidents per hour.
    needs[("topic", settings.topic(AREA_ACTIVITY_TOPIC))] |= {"Write"}
    for topic in incident_tier_topics().values():
        written = {"Write"} if topic.written else set()
        needs[("topic", topic.name)] = {"Create", "Describe", "Read"} | written
    needs[("group", incident_tier().conf.id)] = {"Describe", "Read"}
    return needs


def test_the_incident_user_may_do_what_the_tier_does() -> None:
    for (resource, name), operations in incident_tier_needs().items():
        missing = operations - allowed("ioc-incidents", resource, name)
        assert not missing, f"ioc-incidents may not {sorted(missing)} {resource} {name}"


def test_the_incident_user_may_do_nothing_else() -> None:
    """Least privilege: every ACL grants only what some need of the tier asks, and
    prefixes only Describe (metadata)."""
    needs = incident_tier_needs()
    for acl in acls("ioc-incidents"):
        assert acl.resource in ("topic", "group"), acl
        if acl.pattern == "prefix":
            assert acl.operations == {"Describe"}, acl
            continue
        assert acl.pattern == "literal", acl
        assert acl.operations <= needs.get((acl.resource, acl.name), set()), acl
    assert not allowed("ioc-incidents", "topic", "ioc.traffic.events") - {"Describe"}
    assert not allowed("ioc-incidents", "topic", "sandbox.ioc.alerts")
    assert "Create" not in allowed("ioc-incidents", "topic", "ioc.incidents")


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
    assert roles == {
        "ioc-migrate": "migrate",
        "ioc-worker": "worker",
        "ioc-incidents": "incidents",
        "ioc-api": "api",
    }


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
    external = external_secrets()
    for owner, pod, container in containers():
        for variable in container.get("env", []):
            if "value" in variable:
                assert "PASSWORD" not in variable["name"], owner
                continue
            ref = variable["valueFrom"].get("secretKeyRef")
            if ref:
                assert ref["name"] in defined | external, f"{owner}: {ref['name']}"
            if variable["name"].startswith("IOC_"):
                assert field_exists(variable["name"]), f"{owner}: {variable['name']}"
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in defined | external


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
        # An ACL operation Kafka does not have.
        (
            "KafkaUser",
            "ioc-incidents",
            lambda d: d["spec"]["authorization"]["acls"][0].update(operations=["Reed"]),
            "Reed",
        ),
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
