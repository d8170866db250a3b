"""The config loader: strict schema, key paths and lines in errors, ${VAR} substitution, CLI, schema."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from edge.config import AppConfig, ConfigError, document_version, json_schema, load_file, load_text

REPO = Path(__file__).resolve().parents[1]


def problems(text: str, env: dict | None = None) -> list[str]:
    """The error lines for ``text`` (fails the test if it loads)."""
    with pytest.raises(ConfigError) as info:
        load_text(text, "t.yaml", env=env or {})
    return str(info.value).splitlines()


def test_empty_document_is_a_valid_config():
    loaded = load_text("", "t.yaml", env={})
    assert loaded.config == AppConfig()
    assert loaded.config.device.id                      # defaults to the hostname


def test_shipped_config_yaml_is_valid_and_sets_every_section():
    loaded = load_file(REPO / "config.yaml", env={})
    assert isinstance(loaded.config, AppConfig)
    assert loaded.config.service.remote_config.max_payload_bytes == 65536


def test_unknown_key_names_path_line_and_suggests():
    (line,) = problems("device:\n  id: cam1\nstats:\n  intervl_s: 10\n")
    assert line.startswith("t.yaml:4: stats.intervl_s: unknown key")
    assert "did you mean 'interval_s'" in line


def test_unknown_section():
    (line,) = problems("microphones: {}\n")
    assert line.startswith("t.yaml:1: microphones: unknown key (allowed: align, ")


def test_wrong_type_shows_the_value():
    (line,) = problems("stats:\n  interval_s: often\n")
    assert line.startswith("t.yaml:2: stats.interval_s: Input should be a valid number")
    assert "(got 'often')" in line


def test_out_of_range():
    (line,) = problems("service:\n  remote_config:\n    max_payload_bytes: 99\n")
    assert line.startswith("t.yaml:3: service.remote_config.max_payload_bytes: Input should be greater than or equal to 256")


def test_every_problem_is_listed_once():
    lines = problems("service:\n  backups: -1\nlogging:\n  level: LOUD\ndevice:\n  id: 'a b'\n")
    assert [ln.split(":")[2].strip() for ln in lines] == ["service.backups", "logging.level", "device.id"]


def test_malformed_yaml_gives_the_line():
    (line,) = problems("device:\n  id: cam1\n  name: [unclosed\nstats: {}\n")
    assert line.startswith("t.yaml:4: YAML:")


def test_duplicate_keys_are_errors():
    (line,) = problems("stats:\n  interval_s: 5\n  interval_s: 6\n")
    assert line == "t.yaml:3: stats.interval_s: duplicate key (first at line 2)"


def test_aliases_are_refused():
    (line,) = problems("device: &d {name: x}\npreview: *d\n")
    assert "aliases" in line and line.startswith("t.yaml:2: preview:")


def test_top_level_must_be_a_mapping():
    assert problems("- device\n") == ["t.yaml:1: the document must be a mapping of sections, not a list"]


def test_not_utf8():
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_text(b"device:\n  name: \xff\xfe\n", "t.yaml", env={})


def test_detector_union_errors_use_the_document_path():
    (line,) = problems("detector:\n  type: haar\n  min_score: 3\n")
    assert line.startswith("t.yaml:3: detector.min_score: Input should be less than or equal to 1")
    (line,) = problems("detector:\n  type: yolo\n")
    assert line.startswith("t.yaml:2: detector.type: unknown type 'yolo'")
    (line,) = problems("detector:\n  min_score: 0.5\n")
    assert "detector.type: missing" in line and "type: haar" in line


def test_env_substitution():
    env = {"MQTT_HOST": "broker.lan", "WEIRD": "a: b\n- c"}
    loaded = load_text("device:\n  name: ${WEIRD}\n  location: 'at ${MQTT_HOST}, port ${PORT:-1883}, $$5'\n",
                       "t.yaml", env=env)
    assert loaded.config.device.name == "a: b\n- c"          # substituted after parsing: no structure change
    assert loaded.config.device.location == "at broker.lan, port 1883, $5"
    assert loaded.document["device"]["name"] == "${WEIRD}"    # the document keeps the reference


def test_env_substitution_types_are_validated_after():
    (line,) = problems("stats:\n  interval_s: ${INTERVAL}\n", env={"INTERVAL": "soon"})
    assert line.startswith("t.yaml:2: stats.interval_s: Input should be a valid number")
    assert load_text("stats:\n  interval_s: ${INTERVAL}\n", "t.yaml", env={"INTERVAL": "7.5"}).config.stats.interval_s == 7.5


def test_missing_env_var_is_a_clear_error():
    (line,) = problems("device:\n  name: ${DEVICE_NAME}\n")
    assert line == ("t.yaml:2: device.name: environment variable DEVICE_NAME is not set "
                    "(set it, or write ${DEVICE_NAME:-default})")


def test_malformed_reference():
    (line,) = problems("device:\n  name: '${bad name}'\n")
    assert "malformed reference" in line


def test_the_signing_secret_cannot_be_substituted():
    # A remote config message must not be able to copy the secret into, say, a topic name.
    (line,) = problems("device:\n  name: ${FER_EDGE_CONFIG_SECRET}\n", env={"FER_EDGE_CONFIG_SECRET": "s3cret"})
    assert "config-signing secret" in line and "s3cret" not in line


def test_version_ignores_comments_and_key_order():
    a = load_text("# hi\nstats: {interval_s: 5}\ndevice: {id: x}\n", env={}).version
    b = load_text("device:\n  id: x\nstats:\n  interval_s: 5\n", env={}).version
    c = load_text("device:\n  id: x\nstats:\n  interval_s: 6\n", env={}).version
    assert a == b != c
    assert document_version({}) == load_text("", env={}).version


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match=r"missing.yaml: cannot read"):
        load_file(tmp_path / "missing.yaml")


def test_json_schema_agrees_with_the_loader():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    shipped = yaml.safe_load((REPO / "config.yaml").read_text()) or {}
    jsonschema.validate(shipped, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"stats": {"intervl_s": 1}}, schema)


# --- the command line --------------------------------------------------------------------------

def fer_edge(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env=env)


def test_cli_validate_ok_and_invalid(tmp_path):
    ok = fer_edge("config", "validate", "config.yaml")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("config.yaml: OK (version ")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stats:\n  interval_s: -3\nmqtt:\n  hots: x\n")
    res = fer_edge("config", "validate", str(bad))
    assert res.returncode == 2
    err = res.stderr.splitlines()
    assert err[0].startswith(f"{bad}:2: stats.interval_s: Input should be greater than or equal to 0")
    assert err[1].startswith(f"{bad}:4: mqtt.hots: unknown key")
    assert err[-1] == f"{bad}: invalid (2 problems)"


def test_cli_schema_is_json():
    res = fer_edge("config", "schema")
    assert res.returncode == 0
    schema = json.loads(res.stdout)
    assert set(schema["properties"]) == set(AppConfig.model_fields)


def test_importing_the_config_stays_light():
    # `fer-edge config validate` must be quick on a Pi: no OpenCV, no interpreter, no TensorFlow.
    code = ("import sys, edge.config, edge.commands.config, edge.control.storage; "
            "print(sorted(m for m in ('cv2', 'ai_edge_litert', 'tflite_runtime', 'tensorflow') "
            "if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_docs_reference_is_current():
    from edge.commands.config import markdown_reference

    text = (REPO / "docs" / "config.md").read_text()
    block = text.split("<!-- reference:start -->\n", 1)[1].split("<!-- reference:end -->", 1)[0]
    assert block == markdown_reference(), "docs/config.md is stale: paste `fer-edge config reference` into it"
