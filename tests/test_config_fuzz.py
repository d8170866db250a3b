"""Property test: over 10,000 generated documents, the loader either returns a config or raises ConfigError.

Documents come four ways: arbitrary YAML-ish text, structured data built from the real key names,
the default config with one leaf replaced by a value of any type, and random edits (line deletions,
insertions, truncation, re-indentation, value swaps) of the shipped config.yaml. No other
exception may escape, and every ConfigError must carry at least one problem line.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import AppConfig, ConfigError, Document, LoadedConfig, load_text, validate_document

REPO = Path(__file__).resolve().parents[1]
SHIPPED = (REPO / "config.yaml").read_text()
SHIPPED_LINES = SHIPPED.splitlines(keepends=True)
ENV = {"MQTT_PASSWORD": "pw", "EMPTY": ""}
FAST = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=False, database=None)
COUNTS: dict[str, int] = {}
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
TARGET = 10_000


def _leaf_paths(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaf_paths(v, path + (k,))
    else:
        yield path


DEFAULT_DOC = AppConfig().model_dump(mode="json")
LEAVES = list(_leaf_paths(DEFAULT_DOC))
KEYS = sorted({str(p) for path in LEAVES for p in path} | {"type", "haar", "blazeface", "x", ""})

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["${X}", "${MQTT_PASSWORD}", "${NOPE:-3}", "$$", "${", "0", "1e9",
                                           "yes", "haar", "blazeface", "INFO", "debug", "/dev/video0"]),
)
# Two levels of containers, drawn directly: much faster to generate than st.recursive.
small = st.one_of(scalars, st.lists(scalars, max_size=3))
values = st.one_of(scalars, st.lists(small, max_size=3),
                   st.dictionaries(st.sampled_from(KEYS), st.one_of(small, st.dictionaries(st.sampled_from(KEYS), small, max_size=3)), max_size=4))
yamlish = st.text(alphabet=st.sampled_from(list("abcdetxy_:- \n\t{}[],&*!|>'\"#%@`?$0123456789.=\\")) |
                  st.characters(), max_size=160)


def check(text_or_doc) -> None:
    """The one property: a LoadedConfig, or a ConfigError that says something."""
    try:
        if isinstance(text_or_doc, Document):
            result = validate_document(text_or_doc, ENV)
        else:
            result = load_text(text_or_doc, "fuzz.yaml", ENV)
        assert isinstance(result, LoadedConfig)
    except ConfigError as exc:
        assert exc.problems and str(exc)


def count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


@pytest.mark.slow
@settings(max_examples=3000, **FAST)
@given(yamlish)
def test_arbitrary_text(text):
    count("text")
    check(text)


@pytest.mark.slow
@settings(max_examples=2500, **FAST)
@given(st.dictionaries(st.sampled_from(KEYS[:40] + list(AppConfig.model_fields)), values, max_size=5))
def test_structured_documents(data):
    count("structured")
    check(Document(data, {}, "fuzz"))
    check(yaml.dump(data, Dumper=DUMPER, allow_unicode=True))


@pytest.mark.slow
@settings(max_examples=2500, **FAST)
@given(st.sampled_from(LEAVES), values)
def test_default_config_with_one_leaf_replaced(path, value):
    count("leaf")
    doc = copy.deepcopy(DEFAULT_DOC)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    check(Document(doc, {}, "fuzz"))


def _mutate(draw) -> str:
    lines = list(SHIPPED_LINES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "indent", "dedent", "value", "truncate", "swap"]))
        if not lines:
            break
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "insert":
            lines.insert(i, draw(yamlish) + "\n")
        elif op == "indent":
            lines[i] = "  " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip()
        elif op == "value" and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {draw(st.one_of(yamlish.filter(lambda s: chr(10) not in s), st.just('[]'), st.just('{}')))}\n"
        elif op == "truncate":
            text = "".join(lines)
            cut = draw(st.integers(0, len(text)))
            lines = [text[:cut]]
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


@pytest.mark.slow
@settings(max_examples=2200, **FAST)
@given(st.data())
def test_mutations_of_the_shipped_config(data):
    count("mutation")
    check(data.draw(st.builds(lambda: None).flatmap(lambda _: st.composite(lambda draw: _mutate(draw))())))


def test_zz_at_least_10000_documents(request):
    """Runs last in this file: reports (and checks) how many documents the tests above generated."""
    total = sum(COUNTS.values()) + COUNTS.get("structured", 0)      # structured: checked as data and as YAML
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    line = f"config fuzz: {total} documents ({', '.join(f'{k} {v}' for k, v in sorted(COUNTS.items()))})"
    if reporter:
        reporter.write_line(line)
    print(line)
    if set(COUNTS) != {"text", "structured", "leaf", "mutation"}:
        pytest.skip("run the whole file to check the total")
    assert total >= TARGET
