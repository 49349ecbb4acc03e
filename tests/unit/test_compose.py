"""The production topology (docker-compose.yml, Dockerfile, .env.example) checked with no engine.

No Docker engine runs on the development machines, so nothing ever starts this topology here.
These tests are what catches a typo before a deployment does: the compose file is validated
against the compose-spec JSON schema (tests/data/compose-spec.json), every ``LEADSTREAM_*``
variable is matched against the settings class of the process that reads it, and the wiring
(ports, health checks, start order, scrape targets) is compared across the files.

Each check is a helper that returns a list of problems naming the service or field at fault;
the tests assert the list is empty, and a few tests feed the helpers broken input to show they
do fail.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client import REGISTRY
from pydantic_settings import BaseSettings

from leadstream.errors import ConfigError
from leadstream.runtime.config import RuntimeConfig
from leadstream.settings import PLACEHOLDER_SECRETS, Settings
from leadstream_audit.config import AuditSettings
from leadstream_batch.config import BatchSettings
from leadstream_bison_sync.config import BisonSyncSettings
from leadstream_filter.config import FilterSettings
from leadstream_ingest.config import IngestSettings
from leadstream_ingest.metrics import IngestMetrics
from leadstream_jobs.config import JobsSettings
from leadstream_verify.config import VerifySettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA_FILE = ROOT / "tests" / "data" / "compose-spec.json"
PROMETHEUS_CONFIG = ROOT / "infra" / "prometheus" / "prometheus.yml"
GRAFANA_DATASOURCE = ROOT / "infra" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_PROVIDERS = ROOT / "infra" / "grafana" / "provisioning" / "dashboards" / "leadstream.yml"
GRAFANA_DASHBOARDS = ROOT / "infra" / "grafana" / "dashboards"

INFRA = ("kafka", "registry", "postgres", "mongo", "redis")
OPERATOR_VIEWS = ("kafka-ui", "prometheus", "grafana")
ONE_SHOT_COMMANDS = {
    "migrate": ["leadstream", "migrate"],
    "topics": ["leadstream", "topics", "apply"],
}
APP_SETTINGS: dict[str, type[Settings]] = {
    "ingest": IngestSettings,
    "filter": FilterSettings,
    "verify": VerifySettings,
    "batch": BatchSettings,
    "bison-sync": BisonSyncSettings,
    "jobs": JobsSettings,
    "audit": AuditSettings,
    "registration-writer": IngestSettings,
}
# The one-shot jobs run the ``leadstream`` CLI, which reads the base settings.
PROCESS_SETTINGS: dict[str, type[Settings]] = {
    **APP_SETTINGS,
    "migrate": Settings,
    "topics": Settings,
}
STAGES = tuple(name for name in APP_SETTINGS if name != "ingest")
# The settings fields (bind address, port) of the endpoint that serves each process's /metrics
# and /healthz; the rest use ``metrics_host`` / ``metrics_port``.
METRICS_ENDPOINT_FIELDS: dict[str, tuple[str, str]] = {
    "ingest": ("http_host", "http_port"),
    "jobs": ("web_host", "web_port"),
    "registration-writer": ("registration_writer_metrics_host", "registration_writer_metrics_port"),
}
# Where compose moves a port away from the settings default (faust's 6066 is a dev default).
COMPOSE_METRICS_PORTS = {"jobs": 9105}
# What each process reads from its environment: its settings, and for the Kafka stages the
# stage runtime's tunables (LEADSTREAM_RUNTIME_*).
ENV_READERS: dict[str, tuple[type[BaseSettings], ...]] = {
    name: (cls, RuntimeConfig) if name in STAGES else (cls,)
    for name, cls in PROCESS_SETTINGS.items()
}
INGEST_PORT = 8000
KAFKA_BOOTSTRAP = "kafka:9092"
REGISTRY_URL = "http://registry:8080/apis/ccompat/v7"
LOOPBACK_IPS = frozenset({"127.0.0.1", "::1", "[::1]"})
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "API_KEY")
STRONG_TEST_SECRET = "Xq7-not-a-placeholder-3k9"  # URL-safe, so it fits the connection URLs

Service = dict[str, Any]


# ---------------------------------------------------------------- loading


def load_compose(text: str) -> dict[str, Any]:
    """The compose document, anchors and ``<<`` merge keys resolved (as compose resolves them)."""
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise TypeError(f"a compose file is a mapping, got {type(doc).__name__}")
    return doc


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines of a dotenv file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise ValueError(f"line {number} is not KEY=VALUE: {raw!r}")
        values[key.strip()] = value.strip().strip("'\"")
    return values


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Service]:
    found = compose.get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services mapping"
    return found


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return schema


# ---------------------------------------------------------------- helpers: schema


def schema_errors(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Every way ``doc`` breaks the compose-spec schema, each prefixed with where it is."""
    # The vendored schema names draft 2019-09 by a URI jsonschema does not know; say it here.
    validator = jsonschema.Draft201909Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(part) for part in error.absolute_path) or "<root>"
        problems.append(f"{where}: {error.message}")
    return problems


# ---------------------------------------------------------------- helpers: interpolation

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolated_variables(text: str) -> set[str]:
    """Names of the variables compose substitutes in ``text`` (``$$`` is a literal ``$``)."""
    names = set()
    for match in _INTERPOLATION.finditer(text):
        name = match.group("braced") or match.group("bare")
        if name:
            names.add(name)
    return names


def required_variables(text: str) -> set[str]:
    """Variables written ``${VAR:?message}``: compose refuses to start while they are unset."""
    return {
        m.group("braced")
        for m in _INTERPOLATION.finditer(text)
        if m.group("braced") and m.group("op") == ":?"
    }


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """``value`` as compose would pass it, given the variables in ``env``."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg")
        current = env.get(name)
        unset_or_empty = not current
        if op in (":-", "-") and (current is None or (op == ":-" and unset_or_empty)):
            return arg
        if op in (":?", "?") and (current is None or (op == ":?" and unset_or_empty)):
            raise KeyError(f"{name} is required: {arg}")
        if op in (":+", "+"):
            return arg if (current if op == ":+" else current is not None) else ""
        return current or ""

    return _INTERPOLATION.sub(replace, value)


# ---------------------------------------------------------------- helpers: services


def service_env(service: Service) -> dict[str, str]:
    """A service's ``environment`` as strings, whether written as a mapping or a list."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {key: value for key, _, value in pairs}
    return {key: _env_string(value) for key, value in env.items()}


def _env_string(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def one_shot_services(services: Mapping[str, Service]) -> set[str]:
    """Services that others wait for with ``service_completed_successfully``."""
    return {
        target
        for service in services.values()
        for target, dep in _depends_on(service).items()
        if dep.get("condition") == "service_completed_successfully"
    }


def _depends_on(service: Service) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short form: plain start order, no condition
        return {name: {"condition": "service_started"} for name in deps}
    return {name: (dep or {}) for name, dep in deps.items()}


def image_problems(name: str, service: Service, env: Mapping[str, str]) -> list[str]:
    """Why ``name``'s image is not pinned to an explicit tag (or digest)."""
    image = service.get("image")
    if image is None:
        return [] if "build" in service else [f"{name}: neither image nor build"]
    ref = interpolate(str(image), env)
    if "@sha256:" in ref:
        return []
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return [f"{name}: image {ref!r} has no tag"]
    tag = last.rsplit(":", 1)[1]
    if not tag or tag == "latest" or tag.startswith("latest-"):
        return [f"{name}: image {ref!r} is not pinned (tag {tag!r})"]
    return []


def unknown_settings(
    name: str, service: Service, settings: Sequence[type[BaseSettings]]
) -> list[str]:
    """``LEADSTREAM_*`` variables of ``name`` that no field of its settings classes reads.

    Each class is matched with its own ``env_prefix`` (``LEADSTREAM_X`` -> field ``x``, and
    ``LEADSTREAM_RUNTIME_X`` -> :class:`RuntimeConfig` field ``x``).
    """

    def known(key: str) -> bool:
        for cls in settings:
            prefix = str(cls.model_config.get("env_prefix", ""))
            if key.startswith(prefix) and key[len(prefix) :].lower() in cls.model_fields:
                return True
        return False

    owners = " or ".join(cls.__name__ for cls in settings)
    return [
        f"{name}: {key} is not a field of {owners} (no {key.removeprefix('LEADSTREAM_').lower()!r})"
        for key in sorted(service_env(service))
        if key.startswith("LEADSTREAM_") and not known(key)
    ]


_PORT = re.compile(
    r"^(?:(?P<ip>\[[^\]]+\]|[^:\[\]]+):)?(?:(?P<host>[^:]*):)?(?P<container>[^:/]+)(?:/\w+)?$"
)


def published_beyond_loopback(name: str, service: Service) -> list[str]:
    """Ports of ``name`` reachable from other machines (no 127.0.0.1 host address)."""
    problems = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            ip = str(port.get("host_ip") or "")
            shown = json.dumps(port, sort_keys=True)
        else:
            match = _PORT.match(str(port))
            if match is None:
                problems.append(f"{name}: cannot read port {port!r}")
                continue
            ip = match.group("ip") or ""
            # "8000:8000" parses as ip="8000": a bare number is a host port, not an address.
            if ip.isdigit() and match.group("host") is None:
                ip = ""
            shown = repr(port)
        if ip not in LOOPBACK_IPS:
            problems.append(f"{name}: port {shown} is published on every interface")
    return problems


def missing_healthchecks(services: Mapping[str, Service]) -> list[str]:
    """Long-running services (all but the one-shot jobs) without an enabled health check."""
    one_shots = one_shot_services(services)
    problems = []
    for name, service in services.items():
        if name in one_shots:
            continue
        check = service.get("healthcheck") or {}
        if not check.get("test") or check.get("disable") or check.get("test") == ["NONE"]:
            problems.append(f"{name}: long-running service without a healthcheck")
    return problems


def dependency_problems(
    name: str, service: Service, required: Mapping[str, str], services: Mapping[str, Service]
) -> list[str]:
    """How ``name``'s depends_on differs from ``required`` (dependency -> condition)."""
    deps = _depends_on(service)
    problems = [
        f"{name}: must depend on {target} with {condition}, "
        f"has {deps.get(target, {}).get('condition', 'no dependency')}"
        for target, condition in required.items()
        if deps.get(target, {}).get("condition") != condition
    ]
    problems += [
        f"{name}: depends on {target}, which is not a service"
        for target in deps
        if target not in services
    ]
    return problems


def dockerfile_problems(text: str) -> list[str]:
    """What keeps a Dockerfile from being the slim, frozen, non-root image we ship."""
    lines = _dockerfile_instructions(text)
    problems = []
    bases = [args.split()[0] for op, args in lines if op == "FROM"]
    if not bases:
        problems.append("Dockerfile: no FROM")
    problems += [
        f"Dockerfile: base image {base!r} is not a slim python:3.11 image"
        for base in bases
        if not re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base)
    ]
    users = [args.strip() for op, args in lines if op == "USER"]
    if not users:
        problems.append("Dockerfile: no USER, so the container runs as root")
    elif users[-1].split(":")[0] in {"root", "0"}:
        problems.append(f"Dockerfile: the final USER is {users[-1]!r} (root)")
    syncs = [args for op, args in lines if op == "RUN" and "uv sync" in args]
    if not syncs:
        problems.append("Dockerfile: no `uv sync`: dependencies must come from uv.lock")
    for args in syncs:
        missing = [flag for flag in ("--frozen", "--no-dev", "--all-packages") if flag not in args]
        if missing:
            problems.append(f"Dockerfile: `{args.strip()}` lacks {', '.join(missing)}")
    workdirs = [args.strip() for op, args in lines if op == "WORKDIR"]
    if not workdirs or workdirs[-1] != "/app":
        problems.append(f"Dockerfile: final WORKDIR is {workdirs[-1:] or 'unset'}, not /app")
    copies = [args.split() for op, args in lines if op == "COPY"]
    if not any("uv.lock" in args for args in copies):
        problems.append("Dockerfile: uv.lock is never copied")
    if not any(args and args[-2:-1] == ["schemas"] for args in copies):
        problems.append("Dockerfile: schemas/ is not copied into the image")
    return problems


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, flags like --from kept."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, args = line.partition(" ")
        if op.upper() == "COPY":  # drop --from/--chown so the sources and target remain
            args = " ".join(part for part in args.split() if not part.startswith("--"))
        out.append((op.upper(), args))
    return out


# ---------------------------------------------------------------- 1-2. parsing and schema


def test_compose_file_parses_as_yaml(compose: dict[str, Any]) -> None:
    assert isinstance(compose.get("services"), dict), "docker-compose.yml has no services mapping"
    assert all(isinstance(s, dict) for s in compose["services"].values())


def test_compose_file_matches_the_compose_spec_schema(
    compose: dict[str, Any], compose_schema: dict[str, Any]
) -> None:
    jsonschema.Draft201909Validator.check_schema(compose_schema)
    problems = schema_errors(compose, compose_schema)
    assert not problems, "docker-compose.yml breaks the compose spec:\n" + "\n".join(problems)


def test_schema_check_catches_a_broken_compose_file(compose_schema: dict[str, Any]) -> None:
    broken = {
        "services": {
            "filter": {
                "image": "leadstream-app:1",
                "imagee": "typo",
                "depends_on": {"kafka": {"condition": "service_ready"}},
                "healthcheck": {"test": ["CMD", "true"], "intervall": "10s"},
            }
        },
        "servics": {},
    }
    problems = "\n".join(schema_errors(broken, compose_schema))
    assert "<root>" in problems  # unknown top-level key
    assert "services.filter" in problems  # unknown service key, bad condition
    assert "services.filter.healthcheck" in problems


# ---------------------------------------------------------------- 3. services present


@pytest.mark.parametrize(
    "name", [*INFRA, *OPERATOR_VIEWS, *ONE_SHOT_COMMANDS, *APP_SETTINGS], ids=str
)
def test_service_is_defined(services: dict[str, Service], name: str) -> None:
    assert name in services, f"docker-compose.yml lacks the {name} service"


@pytest.mark.parametrize("name", list(APP_SETTINGS), ids=str)
def test_app_service_runs_its_entrypoint(services: dict[str, Service], name: str) -> None:
    command = services[name].get("command")
    assert command == [f"leadstream-{name}"], f"{name}: command is {command!r}"


@pytest.mark.parametrize("name", list(ONE_SHOT_COMMANDS), ids=str)
def test_one_shot_job_runs_the_cli_once(services: dict[str, Service], name: str) -> None:
    service = services[name]
    assert service.get("command") == ONE_SHOT_COMMANDS[name], f"{name}: {service.get('command')}"
    assert service.get("restart") == "no", f"{name}: a one-shot job must not be restarted"
    assert "ports" not in service, f"{name}: a one-shot job publishes no port"


# ---------------------------------------------------------------- 4. images and build


def test_every_image_is_pinned(services: dict[str, Service], env_example: dict[str, str]) -> None:
    problems = [p for name, s in services.items() for p in image_problems(name, s, env_example)]
    assert not problems, "\n".join(problems)


def test_pinning_check_flags_latest_and_missing_tags() -> None:
    env = {"TAG": "latest"}
    assert image_problems("a", {"image": "redis"}, env) == ["a: image 'redis' has no tag"]
    assert image_problems("b", {"image": "redis:latest"}, env)
    assert image_problems("c", {"image": "ghcr.io/kafbat/kafka-ui"}, env)
    assert image_problems("d", {"image": "localhost:5000/app"}, env)  # a port is not a tag
    assert image_problems("e", {"image": "app:${TAG}"}, env)
    assert image_problems("f", {"image": "app:${UNSET:-1.2}"}, env) == []
    assert image_problems("g", {"image": "redis@sha256:" + "0" * 64}, env) == []


@pytest.mark.parametrize("name", [*ONE_SHOT_COMMANDS, *APP_SETTINGS], ids=str)
def test_leadstream_process_builds_from_the_one_dockerfile(
    services: dict[str, Service], name: str
) -> None:
    build = services[name].get("build")
    assert isinstance(build, dict), f"{name}: no build section (it must build ./Dockerfile)"
    context = ROOT / str(build.get("context", "."))
    dockerfile = context / str(build.get("dockerfile", "Dockerfile"))
    assert dockerfile.resolve() == DOCKERFILE, f"{name}: builds {dockerfile}, not {DOCKERFILE}"
    assert context.resolve() == ROOT, f"{name}: build context is {context}, not the repo root"


def test_leadstream_processes_share_one_image(services: dict[str, Service]) -> None:
    images = {name: services[name].get("image") for name in [*ONE_SHOT_COMMANDS, *APP_SETTINGS]}
    assert len(set(images.values())) == 1, f"LeadStream processes use several images: {images}"


# ---------------------------------------------------------------- 5. settings and .env


@pytest.mark.parametrize("name", list(ENV_READERS), ids=str)
def test_leadstream_env_vars_are_settings_fields(services: dict[str, Service], name: str) -> None:
    problems = unknown_settings(name, services[name], ENV_READERS[name])
    assert not problems, "\n".join(problems)


def test_settings_check_flags_an_unknown_variable() -> None:
    service = {
        "environment": [
            "LEADSTREAM_METRICS_PORT=9101",
            "LEADSTREAM_RUNTIME_BATCH_SIZE=500",
            "LEADSTREAM_METRIC_PORT=9101",
            "LEADSTREAM_RUNTIME_BOGUS=1",
            "PYTHONUNBUFFERED=1",
        ]
    }
    problems = unknown_settings("filter", service, (FilterSettings, RuntimeConfig))
    assert problems == [
        "filter: LEADSTREAM_METRIC_PORT is not a field of FilterSettings or RuntimeConfig"
        " (no 'metric_port')",
        "filter: LEADSTREAM_RUNTIME_BOGUS is not a field of FilterSettings or RuntimeConfig"
        " (no 'runtime_bogus')",
    ]
    assert unknown_settings("ingest", service, (IngestSettings,))[0].startswith(
        "ingest: LEADSTREAM_METRICS_PORT is not a field of IngestSettings"
    )


@pytest.mark.parametrize("name", list(PROCESS_SETTINGS), ids=str)
def test_settings_load_from_the_compose_environment(
    services: dict[str, Service],
    env_example: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    """The container's environment builds a valid production settings object."""
    filled = {
        key: STRONG_TEST_SECRET if "PASSWORD" in key or "SECRET" in key else value
        for key, value in env_example.items()
    }
    for key in [key for key in os.environ if key.startswith("LEADSTREAM_")]:
        monkeypatch.delenv(key)
    container_env = {k: interpolate(v, filled) for k, v in service_env(services[name]).items()}
    for key, value in container_env.items():
        monkeypatch.setenv(key, value)

    settings = PROCESS_SETTINGS[name](_env_file=None)  # type: ignore[call-arg]

    assert settings.env == "prod", f"{name}: LEADSTREAM_ENV is {settings.env!r}"
    assert settings.kafka_bootstrap == KAFKA_BOOTSTRAP, f"{name}: {settings.kafka_bootstrap}"
    assert settings.schema_registry_url == REGISTRY_URL, f"{name}: {settings.schema_registry_url}"
    assert settings.database_password.get_secret_value() == STRONG_TEST_SECRET, name
    assert "@postgres:5432/" in settings.sqlalchemy_url(), f"{name}: {settings.database_url}"
    assert "@mongo:27017" in settings.mongo_url, f"{name}: {settings.mongo_url}"
    assert "@redis:6379" in settings.redis_url, f"{name}: {settings.redis_url}"


def test_placeholder_database_password_is_refused_in_production(
    env_example: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copying .env.example without filling it in cannot start a production service."""
    assert env_example["POSTGRES_PASSWORD"].lower() in PLACEHOLDER_SECRETS
    monkeypatch.setenv("LEADSTREAM_ENV", "prod")
    monkeypatch.setenv("LEADSTREAM_DATABASE_PASSWORD", env_example["POSTGRES_PASSWORD"])
    with pytest.raises(ConfigError, match="LEADSTREAM_DATABASE_PASSWORD"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_every_interpolated_variable_is_in_env_example(env_example: dict[str, str]) -> None:
    used = interpolated_variables(COMPOSE_FILE.read_text(encoding="utf-8"))
    missing = sorted(used - set(env_example))
    assert not missing, f"docker-compose.yml uses variables .env.example lacks: {missing}"


def test_env_example_has_no_unused_variable(env_example: dict[str, str]) -> None:
    used = interpolated_variables(COMPOSE_FILE.read_text(encoding="utf-8"))
    unused = sorted(key for key in set(env_example) - used if not key.startswith("COMPOSE_"))
    assert not unused, f".env.example defines variables docker-compose.yml never uses: {unused}"


def test_env_example_holds_placeholders_only(env_example: dict[str, str]) -> None:
    secrets = {k: v for k, v in env_example.items() if any(w in k for w in SECRET_WORDS)}
    assert secrets, ".env.example names no secret at all"
    real = sorted(k for k, v in secrets.items() if v and v.lower() not in PLACEHOLDER_SECRETS)
    assert not real, f".env.example holds values that look like real secrets: {real}"


def test_passwords_are_required_not_defaulted() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    passwords = {name for name in interpolated_variables(text) if "PASSWORD" in name}
    optional = sorted(passwords - required_variables(text))
    assert passwords, "docker-compose.yml takes no password from .env"
    assert not optional, (
        f"passwords without ${{VAR:?...}} (compose would start without): {optional}"
    )


def test_interpolation_helpers() -> None:
    text = 'a ${A} b ${B:-x} c ${C:?need C} d $$NOT e $E f "$$(cmd)"'
    assert interpolated_variables(text) == {"A", "B", "C", "E"}
    assert required_variables(text) == {"C"}
    assert interpolate("${B:-x}/${A}/$$A", {"A": "1"}) == "x/1/$A"
    assert interpolate("${B-x}", {"B": ""}) == ""
    with pytest.raises(KeyError, match="need C"):
        interpolate("${C:?need C}", {"C": ""})


# ---------------------------------------------------------------- 6. ports, health, start order


def test_only_ingest_is_published_beyond_loopback(services: dict[str, Service]) -> None:
    problems = [
        p
        for name, s in services.items()
        if name != "ingest"
        for p in published_beyond_loopback(name, s)
    ]
    assert not problems, "\n".join(problems)
    ingest_ports = [str(port) for port in services["ingest"].get("ports") or []]
    assert f"{INGEST_PORT}:{INGEST_PORT}" in ingest_ports, f"ingest publishes {ingest_ports}"


def test_port_check_tells_loopback_from_public() -> None:
    public = {"ports": ["8080:8080", "9090", "0.0.0.0:3000:3000", {"target": 80, "published": 80}]}
    assert len(published_beyond_loopback("x", public)) == 4
    private = {"ports": ["127.0.0.1:8080:8080", "[::1]:9090:9090", {"host_ip": "127.0.0.1"}]}
    assert published_beyond_loopback("y", private) == []


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Service]) -> None:
    problems = missing_healthchecks(services)
    assert not problems, "\n".join(problems)
    assert one_shot_services(services) == set(ONE_SHOT_COMMANDS)


def test_healthcheck_check_flags_a_missing_check() -> None:
    services: dict[str, Service] = {
        "app": {"depends_on": {"once": {"condition": "service_completed_successfully"}}},
        "once": {},
        "db": {"healthcheck": {"test": ["NONE"]}},
    }
    assert missing_healthchecks(services) == [
        "app: long-running service without a healthcheck",
        "db: long-running service without a healthcheck",
    ]


@pytest.mark.parametrize("name", list(APP_SETTINGS), ids=str)
def test_app_service_waits_for_jobs_and_healthy_infra(
    services: dict[str, Service], name: str
) -> None:
    required = {job: "service_completed_successfully" for job in ONE_SHOT_COMMANDS}
    required |= {infra: "service_healthy" for infra in INFRA}
    problems = dependency_problems(name, services[name], required, services)
    assert not problems, "\n".join(problems)


def test_every_dependency_condition_fits_its_target(services: dict[str, Service]) -> None:
    """service_healthy only on services with a health check; one-shots awaited to completion."""
    one_shots = one_shot_services(services)
    problems = []
    for name, service in services.items():
        for target, dep in _depends_on(service).items():
            condition = dep.get("condition")
            if target not in services:
                problems.append(f"{name}: depends on unknown service {target}")
            elif target in one_shots and condition != "service_completed_successfully":
                problems.append(f"{name}: waits for one-shot {target} with {condition}")
            elif target not in one_shots and condition != "service_healthy":
                problems.append(f"{name}: waits for {target} with {condition}, not service_healthy")
    assert not problems, "\n".join(problems)


def test_dependency_check_names_the_wrong_condition() -> None:
    services = {"app": {"depends_on": {"kafka": {"condition": "service_started"}}}, "kafka": {}}
    problems = dependency_problems(
        "app", services["app"], {"kafka": "service_healthy", "topics": "x"}, services
    )
    assert problems == [
        "app: must depend on kafka with service_healthy, has service_started",
        "app: must depend on topics with x, has no dependency",
    ]


@pytest.mark.parametrize("name", STAGES, ids=str)
def test_stage_healthcheck_probes_its_metrics_port(services: dict[str, Service], name: str) -> None:
    service = services[name]
    _, port_var = metrics_endpoint_vars(name)
    port = service_env(service).get(port_var)
    field = METRICS_ENDPOINT_FIELDS.get(name, ("metrics_host", "metrics_port"))[1]
    expected = COMPOSE_METRICS_PORTS.get(name, APP_SETTINGS[name].model_fields[field].default)
    assert port == str(expected), f"{name}: {port_var} is {port}, expected {expected}"
    test = " ".join(service["healthcheck"]["test"])
    assert "/healthz" in test, f"{name}: healthcheck does not probe /healthz: {test}"
    assert port_var in test or f":{port}/" in test, f"{name}: probes {test}"
    assert "curl" not in test, f"{name}: the slim image has no curl: {test}"


def metrics_endpoint_vars(name: str) -> tuple[str, str]:
    """The environment variables of ``name``'s /metrics bind address and port."""
    host, port = METRICS_ENDPOINT_FIELDS.get(name, ("metrics_host", "metrics_port"))
    return f"LEADSTREAM_{host.upper()}", f"LEADSTREAM_{port.upper()}"


@pytest.mark.parametrize("name", list(APP_SETTINGS), ids=str)
def test_metrics_endpoint_listens_beyond_the_container(
    services: dict[str, Service], name: str
) -> None:
    """Prometheus scrapes from its own container: a loopback bind would be unreachable."""
    host_var, port_var = metrics_endpoint_vars(name)
    env = service_env(services[name])
    assert env.get(host_var) == "0.0.0.0", f"{name}: {host_var} is {env.get(host_var)!r}"
    assert env.get(port_var), f"{name}: no {port_var}"
    for cls in ENV_READERS[name][:1]:
        field = host_var.removeprefix("LEADSTREAM_").lower()
        assert field in cls.model_fields, f"{name}: {cls.__name__} has no {field}"


def test_ingest_listens_on_every_interface(services: dict[str, Service]) -> None:
    env = service_env(services["ingest"])
    assert env.get("LEADSTREAM_HTTP_HOST") == "0.0.0.0", "ingest must listen beyond loopback"
    assert env.get("LEADSTREAM_HTTP_PORT") == str(INGEST_PORT), f"ingest port: {env}"
    test = " ".join(services["ingest"]["healthcheck"]["test"])
    assert f"127.0.0.1:{INGEST_PORT}/healthz" in test, f"ingest healthcheck: {test}"


# ---------------------------------------------------------------- wiring between the files


def test_apps_reach_the_broker_the_broker_advertises(services: dict[str, Service]) -> None:
    advertised = service_env(services["kafka"]).get("KAFKA_ADVERTISED_LISTENERS", "")
    assert f"//{KAFKA_BOOTSTRAP}" in advertised, f"kafka advertises {advertised!r}"
    assert service_env(services["registry"]).get("APICURIO_KAFKASQL_BOOTSTRAP_SERVERS") == (
        KAFKA_BOOTSTRAP
    )


def test_kafka_ui_points_at_the_broker_and_the_registry(services: dict[str, Service]) -> None:
    env = service_env(services["kafka-ui"])
    assert env.get("KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS") == KAFKA_BOOTSTRAP, f"kafka-ui: {env}"
    assert env.get("KAFKA_CLUSTERS_0_SCHEMAREGISTRY") == REGISTRY_URL, f"kafka-ui: {env}"


_METRICS_PORT_VAR = re.compile(r"^LEADSTREAM_(?:\w+_)?(?:METRICS|WEB)_PORT$")


def scrape_targets(config: Mapping[str, Any]) -> set[str]:
    """Every static ``host:port`` target of a Prometheus configuration."""
    return {
        str(target)
        for job in config.get("scrape_configs") or []
        for static in job.get("static_configs") or []
        for target in static.get("targets") or []
    }


def unscraped_metrics_ports(
    services: Mapping[str, Service], config: Mapping[str, Any]
) -> list[str]:
    """Services with a metrics port (any ``LEADSTREAM_*METRICS_PORT`` / ``*WEB_PORT``, and
    ingest's HTTP port) that Prometheus does not scrape as ``<service>:<port>``."""
    targets = scrape_targets(config)
    problems = []
    for name, service in services.items():
        env = service_env(service)
        ports = {v for k, v in env.items() if _METRICS_PORT_VAR.match(k)}
        if name == "ingest":
            ports.add(env.get("LEADSTREAM_HTTP_PORT", str(INGEST_PORT)))
        problems += [
            f"{name}: metrics port {port} is not a scrape target ({name}:{port})"
            for port in sorted(ports)
            if f"{name}:{port}" not in targets
        ]
    return problems


def test_prometheus_scrapes_every_service_with_a_metrics_port(
    services: dict[str, Service],
) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    problems = unscraped_metrics_ports(services, config)
    assert not problems, "\n".join(problems)
    scraped = {target.split(":")[0] for target in scrape_targets(config)}
    assert set(APP_SETTINGS) <= scraped, f"not scraped: {sorted(set(APP_SETTINGS) - scraped)}"
    unknown = sorted(scraped - set(services) - {"127.0.0.1"})
    assert not unknown, f"{PROMETHEUS_CONFIG.name} scrapes hosts that are no service: {unknown}"


def test_scrape_check_names_a_missing_target() -> None:
    services: dict[str, Service] = {
        "ingest": {"environment": {"LEADSTREAM_HTTP_PORT": 8000}},
        "filter": {"environment": {"LEADSTREAM_METRICS_PORT": 9101}},
        "jobs": {"environment": ["LEADSTREAM_WEB_PORT=9105"]},
        "writer": {"environment": {"LEADSTREAM_REGISTRATION_WRITER_METRICS_PORT": 9108}},
        "kafka": {"environment": {"KAFKA_NODE_ID": 1}},
    }
    config = {"scrape_configs": [{"static_configs": [{"targets": ["ingest:8000", "jobs:6066"]}]}]}
    assert unscraped_metrics_ports(services, config) == [
        "filter: metrics port 9101 is not a scrape target (filter:9101)",
        "jobs: metrics port 9105 is not a scrape target (jobs:9105)",
        "writer: metrics port 9108 is not a scrape target (writer:9108)",
    ]


def test_grafana_uses_prometheus_as_its_datasource() -> None:
    config = yaml.safe_load(GRAFANA_DATASOURCE.read_text(encoding="utf-8"))
    sources = {source["name"]: source for source in config["datasources"]}
    assert "Prometheus" in sources, f"datasources: {list(sources)}"
    prometheus = sources["Prometheus"]
    assert prometheus["type"] == "prometheus", f"Prometheus datasource: {prometheus}"
    assert prometheus["url"] == "http://prometheus:9090", f"Prometheus datasource: {prometheus}"
    assert prometheus.get("isDefault") is True


# ---------------------------------------------------------------- Grafana dashboards

# The modules that define the services' metrics (the ingest API's are in IngestMetrics).
METRICS_MODULES = (
    "leadstream.runtime.metrics",
    "leadstream_audit.metrics",
    "leadstream_batch.metrics",
    "leadstream_bison_sync.metrics",
    "leadstream_jobs.table",
)
_METRIC_NAME = re.compile(r"\bleadstream_[a-z0-9_]+\b")


def code_metric_names() -> set[str]:
    """Every sample name the services can expose, from the metric objects in their code.

    Importing the metrics modules registers their metrics in the default registry; the ingest
    API keeps its own registry, built by :class:`IngestMetrics`. A counter ``x`` is scraped as
    ``x_total``, a histogram as ``x_bucket``/``x_sum``/``x_count``.
    """
    for module in METRICS_MODULES:
        importlib.import_module(module)
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count", ""),
        "gauge": ("",),
        "info": ("_info",),
    }
    names = set()
    for registry in (REGISTRY, IngestMetrics().registry):
        for family in registry.collect():
            names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
            names |= {sample.name for sample in family.samples}
    return {name for name in names if name.startswith("leadstream_")}


def dashboard_exprs(dashboard: Mapping[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard: panel targets and query variables."""
    exprs = [
        str(target.get("expr", ""))
        for panel in _panels(dashboard)
        for target in panel.get("targets") or []
    ]
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        query = variable.get("query")
        exprs.append(str(query.get("query", "") if isinstance(query, dict) else query or ""))
    return exprs


def _panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard.get("panels") or []:
        out.append(panel)
        out += panel.get("panels") or []  # a collapsed row keeps its panels inside
    return out


def unknown_metrics(exprs: Sequence[str], known: set[str]) -> list[str]:
    """``leadstream_*`` names used in ``exprs`` that no service exposes."""
    return sorted({name for expr in exprs for name in _METRIC_NAME.findall(expr)} - known)


def dashboard_problems(dashboard: Mapping[str, Any], datasource_uids: set[str]) -> list[str]:
    """What keeps a dashboard JSON from loading as a working provisioned dashboard."""
    problems = []
    for field in ("uid", "title", "schemaVersion", "panels"):
        if not dashboard.get(field):
            problems.append(f"dashboard: no {field}")
    if len(str(dashboard.get("uid", ""))) > 40:
        problems.append("dashboard: uid longer than 40 characters")
    ids = [panel.get("id") for panel in _panels(dashboard)]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append(f"dashboard: panel ids missing or repeated: {ids}")
    taken: dict[tuple[int, int], object] = {}
    for panel in _panels(dashboard):
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        grid = panel.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            problems.append(f"{where}: gridPos needs integer h, w, x, y")
            continue
        if grid["x"] + grid["w"] > 24:
            problems.append(f"{where}: wider than the 24-column grid")
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        overlapped = {taken[c] for c in cells if c in taken}
        if overlapped:
            problems.append(f"{where}: overlaps panel(s) {sorted(map(str, overlapped))}")
        taken |= dict.fromkeys(cells, panel.get("id"))
        if panel.get("type") == "row":
            continue
        if not panel.get("title"):
            problems.append(f"{where}: no title")
        uids = [(panel.get("datasource") or {}).get("uid")]
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        for target in targets:
            uids.append((target.get("datasource") or {}).get("uid"))
            expr = str(target.get("expr", ""))
            if not expr.strip() or not target.get("refId"):
                problems.append(f"{where}: a target without expr or refId")
            elif not _balanced(expr):
                problems.append(f"{where}: unbalanced brackets or quotes in {expr!r}")
        problems += [
            f"{where}: datasource uid {uid!r} is not a provisioned datasource"
            for uid in uids
            if uid not in datasource_uids
        ]
    return problems


def _balanced(expr: str) -> bool:
    """Brackets of a PromQL expression close in order, outside its string literals."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    quote = ""
    for char in expr:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack and not quote


@pytest.fixture(scope="module")
def datasource_uids() -> set[str]:
    config = yaml.safe_load(GRAFANA_DATASOURCE.read_text(encoding="utf-8"))
    return {str(source["uid"]) for source in config["datasources"]}


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    found = {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(GRAFANA_DASHBOARDS.glob("*.json"))
    }
    assert "leadstream.json" in found, f"no leadstream.json in {GRAFANA_DASHBOARDS}"
    return found


def test_dashboards_are_well_formed(
    dashboards: dict[str, dict[str, Any]], datasource_uids: set[str]
) -> None:
    problems = [
        f"{name}: {p}"
        for name, board in dashboards.items()
        for p in dashboard_problems(board, datasource_uids)
    ]
    assert not problems, "\n".join(problems)
    uids = [board["uid"] for board in dashboards.values()]
    assert len(uids) == len(set(uids)), f"dashboard uids repeat: {uids}"


def test_dashboard_metrics_exist_in_the_code(dashboards: dict[str, dict[str, Any]]) -> None:
    known = code_metric_names()
    assert "leadstream_stage_records_in_total" in known, sorted(known)
    assert "leadstream_http_request_seconds_bucket" in known, sorted(known)
    for name, board in dashboards.items():
        exprs = dashboard_exprs(board)
        assert exprs, f"{name}: no queries"
        missing = unknown_metrics(exprs, known)
        assert not missing, f"{name} queries metrics no service exposes: {missing}"


def test_dashboard_covers_the_pipeline(dashboards: dict[str, dict[str, Any]]) -> None:
    used = {
        n for e in dashboard_exprs(dashboards["leadstream.json"]) for n in _METRIC_NAME.findall(e)
    }
    for metric in (
        "leadstream_stage_records_in_total",
        "leadstream_stage_records_out_total",
        "leadstream_stage_consumer_lag",
        "leadstream_stage_dead_lettered_total",
        "leadstream_stage_batch_seconds_bucket",
        "leadstream_stage_transaction_seconds_bucket",
        "leadstream_stage_end_to_end_seconds_bucket",
        "leadstream_http_requests_total",
        "leadstream_http_request_seconds_bucket",
        "leadstream_jobs_by_status",
    ):
        assert metric in used, f"the dashboard has no panel on {metric}"


def test_dashboard_checks_catch_a_broken_dashboard() -> None:
    broken = {
        "title": "x",
        "schemaVersion": 41,
        "panels": [
            {
                "id": 1,
                "type": "timeseries",
                "title": "a",
                "gridPos": {"h": 8, "w": 8, "x": 20, "y": 0},
                "datasource": {"uid": "other"},
                "targets": [
                    {
                        "refId": "A",
                        "expr": "sum(rate(leadstream_nope_total[5m])",
                        "datasource": {"uid": "prometheus"},
                    }
                ],
            },
            {
                "id": 1,
                "type": "stat",
                "title": "b",
                "gridPos": {"h": 8, "w": 8, "x": 16, "y": 4},
                "datasource": {"uid": "prometheus"},
                "targets": [],
            },
        ],
    }
    problems = "\n".join(dashboard_problems(broken, {"prometheus"}))
    for expected in (
        "no uid",
        "repeated",
        "wider than",
        "'other'",
        "no targets",
        "overlaps",
        "unbalanced",
    ):
        assert expected in problems, f"{expected!r} not reported in:\n{problems}"
    assert unknown_metrics(dashboard_exprs(broken), {"leadstream_ok_total"}) == [
        "leadstream_nope_total"
    ]
    assert _balanced('sum by (a) (rate(x{s=~"(a"}[5m]))')
    assert not _balanced("rate(x[5m)]")


def test_dashboard_json_is_the_generators_output() -> None:
    """infra/grafana/dashboard.py writes leadstream.json: edit the script, not the JSON."""
    spec = importlib.util.spec_from_file_location(
        "dashboard", GRAFANA_DASHBOARDS.parent / "dashboard.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (GRAFANA_DASHBOARDS / "leadstream.json").read_text(encoding="utf-8")
    assert module.render() == committed, "run: uv run python infra/grafana/dashboard.py"


def test_grafana_loads_the_dashboards_folder(services: dict[str, Service]) -> None:
    """The provider's path is where compose mounts infra/grafana/dashboards."""
    config = yaml.safe_load(GRAFANA_PROVIDERS.read_text(encoding="utf-8"))
    paths = {provider["options"]["path"] for provider in config["providers"]}
    mounts = {}
    for volume in services["grafana"].get("volumes") or []:
        source, target = str(volume).split(":")[:2]
        mounts[(ROOT / source).resolve()] = target
    assert mounts.get(GRAFANA_DASHBOARDS.resolve()) in paths, f"mounts {mounts}, paths {paths}"
    assert mounts.get(GRAFANA_PROVIDERS.parent.resolve()) == (
        "/etc/grafana/provisioning/dashboards"
    ), f"grafana mounts: {mounts}"


def test_bind_mounts_exist_in_the_repo(services: dict[str, Service]) -> None:
    problems = []
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = str(volume.split(":")[0] if isinstance(volume, str) else volume.get("source"))
            if source.startswith(".") and not (ROOT / source).exists():
                problems.append(f"{name}: mounts {source}, which does not exist")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- 7. Dockerfile


def test_dockerfile_is_slim_frozen_and_non_root() -> None:
    problems = dockerfile_problems(DOCKERFILE.read_text(encoding="utf-8"))
    assert not problems, "\n".join(problems)


def test_dockerfile_check_flags_a_fat_root_unlocked_image() -> None:
    bad = "FROM python:3.11\nWORKDIR /srv\nCOPY . .\nRUN uv sync --all-packages\nUSER root\n"
    problems = "\n".join(dockerfile_problems(bad))
    for expected in ("not a slim", "(root)", "--frozen", "--no-dev", "/app", "uv.lock", "schemas"):
        assert expected in problems, f"{expected!r} not reported in:\n{problems}"


def test_dockerignore_keeps_secrets_and_history_out() -> None:
    patterns = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    for pattern in (".env", ".git", ".venv", ".local"):
        assert pattern in patterns, f".dockerignore does not exclude {pattern}"
