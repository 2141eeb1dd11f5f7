"""compose.yaml, checked without a Docker engine: against the Compose Specification's JSON schema
(compose_spec.json, from Debian's docker-compose 1.29.2, Apache-2.0), and against the settings the
service actually reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from entrypoints.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).with_name("compose_spec.json")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(compose, schema, cls=jsonschema.Draft7Validator)


def test_every_hexpost_variable_it_sets_is_a_setting(compose: dict[str, Any]) -> None:
    fields = {f"HEXPOST_{name.upper()}" for name in Settings.model_fields}
    set_here = {
        name
        for service in compose["services"].values()
        for name in service.get("environment", {})
        if name.startswith("HEXPOST_")
    }
    assert "HEXPOST_DATABASE_URL" in set_here
    assert set_here - fields == set()


def test_the_service_waits_for_healthy_backends_and_finished_migrations(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["hexpost", "migrate"]
    assert services["hexpost"]["depends_on"] == {
        "mysql": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert "/healthz" in " ".join(services["hexpost"]["healthcheck"]["test"])
    assert services["mysql"]["image"].startswith("mysql:8")
    assert services["redis"]["image"].startswith("redis:7")
    environment = services["hexpost"]["environment"]
    assert environment["HEXPOST_DATABASE_URL"].startswith("mysql+asyncmy://")
    assert environment["HEXPOST_CACHE_URL"].startswith("redis://")
