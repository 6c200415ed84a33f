"""docker-compose.yml, checked offline by Debian's docker-compose (`config`: schema,
interpolation, references) and against the project's own settings and CLI."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from typer.testing import CliRunner

from ioc.cli import app
from ioc.settings import Settings
from tests.utils.compose import compose_config, install_docker_compose, rendered
from tests.utils.services import ROOT
from tests.utils.setting_names import field_exists

COMPOSE = ROOT / "docker-compose.yml"
ENV = {"IOC_DB_PASSWORD": "pw-for-the-test-71c"}
ONE_SHOT = {"migrate", "topics", "seed"}
LONG_RUNNING = {"kafka", "timescaledb", "worker", "incidents", "api", "simulator"}
# Long-running roles with no port for a healthcheck to ask: the simulator, and the
# incident tier (Faust's web server is off).
NO_PORT = {"simulator", "incidents"}
OUR_IMAGE = "smart-city-ioc:latest"


@pytest.fixture(scope="module")
def compose() -> str:
    return install_docker_compose()


@pytest.fixture(scope="module")
def demo(compose: str) -> dict[str, Any]:
    """The whole file as rendered with the demo profile on."""
    return rendered(compose_config(compose, env=ENV, profiles=("demo",)))


def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    value = config["services"]
    assert isinstance(value, dict)
    return value


def test_default_services_and_the_demo_profile(demo: dict[str, Any]) -> None:
    """`config` lists every service; `up` starts those without a profile, and the demo
    ones only with `--profile demo`."""
    found = services(demo)
    assert set(found) == {"kafka", "timescaledb", "migrate", "topics", "worker", "api"} | {
        "incidents",
        "seed",
        "simulator",
    }
    in_demo = {name for name, service in found.items() if service.get("profiles")}
    assert in_demo == {"seed", "simulator"}
    assert all(found[name]["profiles"] == ["demo"] for name in in_demo)


def test_the_database_password_is_required_and_written_nowhere(compose: str) -> None:
    result = compose_config(compose, env={})
    assert result.returncode != 0
    assert "set IOC_DB_PASSWORD" in result.stderr
    text = COMPOSE.read_text()
    assert ENV["IOC_DB_PASSWORD"] not in text
    keys = re.findall(r"(?m)^\s*(\w*(?:PASSWORD|SECRET|JWT_KEY)\w*):(.*)$", text)
    assert {k for k, _ in keys} >= {"POSTGRES_PASSWORD", "IOC_API__JWT_KEY"}
    for key, value in keys:
        assert value.strip() == "" or value.strip().startswith("${"), f"{key}: a literal secret"
    # Passwords inside URLs come from the environment too.
    for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", text):
        assert password.startswith("${"), f"a literal password in a URL: {password}"


def test_long_running_roles_wait_for_the_jobs(demo: dict[str, Any]) -> None:
    found = services(demo)
    for name in ("worker", "api"):
        needs = found[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert needs["topics"]["condition"] == "service_completed_successfully"
    assert found["migrate"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    assert found["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert found["simulator"]["depends_on"]["seed"]["condition"] == "service_completed_successfully"
    for name in ONE_SHOT:
        assert found[name]["restart"] == "no"


def test_the_incident_tier_needs_kafka_and_its_topics_only(demo: dict[str, Any]) -> None:
    incidents = services(demo)["incidents"]
    assert incidents["command"] == ["incidents"]
    needs = incidents["depends_on"]
    assert needs["kafka"]["condition"] == "service_healthy"
    assert needs["topics"]["condition"] == "service_completed_successfully"
    assert "timescaledb" not in needs
    # Kafka only: the database's password is not handed to it.
    assert "DATABASE_URL" not in incidents["environment"]
    assert incidents["restart"] == services(demo)["worker"]["restart"]


def test_every_long_running_service_has_a_healthcheck(demo: dict[str, Any]) -> None:
    found = services(demo)
    for name in LONG_RUNNING - NO_PORT:
        assert found[name]["healthcheck"]["test"], name
    for name in NO_PORT:
        assert "healthcheck" not in found[name], name
    assert found["api"]["healthcheck"]["test"][-1] == "http://127.0.0.1:8000/healthz"
    assert found["worker"]["healthcheck"]["test"][-1] == "http://127.0.0.1:6066/metrics"


@pytest.mark.parametrize("name", ["worker", "incidents"])
def test_workers_can_be_scaled(demo: dict[str, Any], name: str) -> None:
    """A fixed name or a host port would make `--scale worker=N` fail on the second one."""
    worker = services(demo)[name]
    assert "container_name" not in worker
    assert "ports" not in worker


def ioc_variables(environment: dict[str, Any]) -> dict[str, str]:
    return {
        k: v
        for k, v in environment.items()
        if v is not None
        and (k.startswith("IOC_") or k in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"))
    }


def test_every_variable_is_a_setting_and_the_settings_load(
    demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in services(demo).items():
        if service["image"] != OUR_IMAGE:
            continue
        variables = ioc_variables(service["environment"])
        for variable in variables:
            if variable.startswith("IOC_"):
                assert field_exists(variable), f"{name}: {variable} is no setting"
        for variable in variables:
            monkeypatch.setenv(variable, str(variables[variable]))
        if "DATABASE_URL" not in variables:
            monkeypatch.delenv("DATABASE_URL", raising=False)
        settings = Settings(_env_file=None)
        assert settings.bootstrap_servers == "kafka:9092"
        assert settings.kafka.partitions == 12
        if "DATABASE_URL" in variables:
            password = ENV["IOC_DB_PASSWORD"]
            assert settings.dsn == f"postgresql://ioc:{password}@timescaledb:5432/ioc"
    assert not field_exists("IOC_KAFKA__PARTITONS")


def test_every_role_is_an_ioc_command(demo: dict[str, Any]) -> None:
    runner = CliRunner()
    roles = {
        name: service["command"][0]
        for name, service in services(demo).items()
        if service["image"] == OUR_IMAGE
    }
    assert set(roles.values()) == {
        "migrate",
        "topics",
        "worker",
        "incidents",
        "api",
        "seed",
        "simulate",
    }
    for role in roles.values():
        result = runner.invoke(app, [role, "--help"])
        assert result.exit_code == 0, f"ioc {role}: {result.output}"
    assert runner.invoke(app, ["no-such-role", "--help"]).exit_code != 0


def test_kafka_cluster_id_is_a_kraft_uuid(demo: dict[str, Any]) -> None:
    cluster_id = services(demo)["kafka"]["environment"]["CLUSTER_ID"]
    assert len(cluster_id) == 22
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("condition: service_completed_successfully}", "condition: service_done}", "condition"),
        (
            "      timescaledb: {condition: service_healthy}",
            "      postgres: {condition: service_healthy}",
            "postgres",
        ),
        (
            '    healthcheck:\n      test: ["CMD", "python", "-m", "ioc.probe", "http://127.0.0.1:8000',
            '    healthchek:\n      test: ["CMD", "python", "-m", "ioc.probe", "http://127.0.0.1:8000',
            "healthchek",
        ),
    ],
)
def test_a_broken_file_is_refused(
    compose: str, tmp_path: Path, old: str, new: str, error: str
) -> None:
    text = COMPOSE.read_text()
    assert old in text, "the mistake to make is no longer in the file"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1))
    result = compose_config(compose, file=broken, env=ENV)
    assert result.returncode != 0
    assert error in result.stderr


def test_the_file_parses_as_yaml_with_its_anchors() -> None:
    data = yaml.safe_load(COMPOSE.read_text())
    assert data["services"]["worker"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert "DATABASE_URL" in data["services"]["worker"]["environment"]
    incidents = data["services"]["incidents"]["environment"]
    assert incidents["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert "DATABASE_URL" not in incidents
