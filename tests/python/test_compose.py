"""compose.yaml is valid Compose: checked against the Compose specification's JSON schema
(vendored by check-jsonschema from PyPI, `vendor.compose-spec`), and for the topology rules
the schema cannot express. There is no Docker engine here to run it."""

import pathlib
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"


def check_jsonschema():
    exe = shutil.which("check-jsonschema") or str(ROOT / ".cache/venv/bin/check-jsonschema")
    assert pathlib.Path(exe).exists(), "check-jsonschema missing: run scripts/install-deps"
    return exe


def validate(path):
    return subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )


def load():
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_matches_the_compose_spec_schema():
    result = validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "breakage",
    [
        lambda doc: doc["services"]["kafka"].__setitem__("healthcheck", {"interval": 5}),
        lambda doc: doc["services"]["postgres"].__setitem__("ports", "5432"),
        lambda doc: doc["services"]["ledger"].__setitem__("depends_on", {"kafka": {"condition": "when_ready"}}),
    ],
    ids=["healthcheck-type", "ports-not-a-list", "unknown-depends-condition"],
)
def test_the_schema_check_rejects_broken_files(tmp_path, breakage):
    """The validator must be able to fail: a broken copy is rejected."""
    doc = load()
    breakage(doc)
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(doc))
    assert validate(broken).returncode != 0


def test_topology_kafka_in_kraft_mode_and_healthy_dependencies():
    services = load()["services"]
    kafka = services["kafka"]["environment"]
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "ZOOKEEPER" not in " ".join(kafka)
    # The topics are the ledger's source of truth: the broker deletes nothing by default.
    assert kafka["KAFKA_LOG_RETENTION_MS"] == "-1"
    for infra in ("kafka", "postgres"):
        assert "healthcheck" in services[infra], f"{infra} needs a healthcheck"
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert spec["condition"] == "service_healthy", f"{name} must wait for {dependency}"
            assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    for app in ("ingester", "ledger", "cashapp", "reconciler"):
        env = services[app]["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["DATABASE_URL"].startswith("postgres://")


def test_the_ledger_listens_beyond_the_container_loopback():
    # The binary's defaults bind 127.0.0.1, which a published port cannot reach.
    ledger = load()["services"]["ledger"]
    env, ports = ledger["environment"], ledger["ports"]
    for var in ("LEDGERLINE_GRPC_ADDR", "LEDGERLINE_METRICS_ADDR"):
        host, port = env[var].rsplit(":", 1)
        assert host == "0.0.0.0", f"{var} = {env[var]}"
        assert any(p.endswith(f":{port}") for p in ports), f"{var}'s port {port} is not published"
    assert "LEDGERLINE_TOKENS" in env, "without tokens every gRPC call is UNAUTHENTICATED"


def test_every_default_service_runs_a_binary_the_workspace_builds():
    # A service whose binary does not exist would restart forever: such a service waits
    # behind a profile until it is built.
    import tomllib

    binaries = {"ledgerline"}
    for manifest in ROOT.glob("services/*/Cargo.toml"):
        package = tomllib.loads(manifest.read_text())
        for b in package.get("bin", []):
            binaries.add(b["name"])
        if (manifest.parent / "src" / "main.rs").exists():
            binaries.add(package["package"]["name"])
        binaries.update(p.stem for p in (manifest.parent / "src" / "bin").glob("*.rs"))
    for name, service in load()["services"].items():
        command = service.get("command")
        if not command or service.get("profiles"):
            continue
        assert command[0] in binaries, f"{name} runs {command[0]}, which no crate builds"
        check = (service.get("healthcheck") or {}).get("test", [])
        if len(check) > 1 and check[0] == "CMD":
            assert check[1] in binaries, f"{name}'s health check runs {check[1]}, which no crate builds"
