"""Loading a config: YAML text -> document (with the line of every key) -> ``${VAR}`` -> AppConfig.

Anything wrong at any step raises one :class:`~edge.config.errors.ConfigError` whose message lists
every problem as ``file:line: key.path: reason``. The config package imports no runtime code (no
OpenCV, no interpreter), so ``fer-edge config validate`` is quick on a Pi.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from edge.config.app import AppConfig, section_models
from edge.config.base import ENV_NAME
from edge.config.errors import ConfigError, Problem
from edge.config.service import RemoteConfigConfig
from edge.formatting import compact_json

DEFAULT_PATHS = (Path("/etc/fer-edge/config.yaml"), Path("config.yaml"))


# ----------------------------------------------------------------------------------------------
# YAML -> document, with the line of every key
# ----------------------------------------------------------------------------------------------

# libyaml's parser where present (several times faster on a Pi); the pure-Python one otherwise.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _walk_nodes(node: yaml.Node, path: tuple, lines: dict[tuple, int], problems: list[Problem],
                seen_nodes: set[int]) -> None:
    """Record the line of every mapping key; report duplicate keys and aliases.

    PyYAML silently keeps the last of duplicate keys, and aliases (``*name``) let a few bytes expand
    into an exponentially large document ("billion laughs"), so both are errors here. An alias
    shows up as a node object met a second time.
    """
    if id(node) in seen_nodes:
        problems.append(Problem(path, "YAML aliases (*name) are not supported; write the value out",
                                lines.get(path, node.start_mark.line + 1)))
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is not None:
                if key in seen:
                    problems.append(Problem(path + (key,), f"duplicate key (first at line {seen[key]})", line))
                seen.setdefault(key, line)
                lines.setdefault(path + (key,), line)
            _walk_nodes(key_node, path, {}, problems, seen_nodes)
            _walk_nodes(value_node, path + (key,), lines, problems, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.setdefault(path + (i,), item.start_mark.line + 1)
            _walk_nodes(item, path + (i,), lines, problems, seen_nodes)


@dataclass
class Document:
    """A parsed YAML config before validation: plain data plus the line of each key path."""

    data: dict[str, Any]
    lines: dict[tuple, int] = field(default_factory=dict)
    source: str | None = None


def parse_yaml(text: str | bytes, source: str | None = None) -> Document:
    """Parse YAML text into a :class:`Document`; the top level must be a mapping (or empty).

    Raises ConfigError for bad encoding, YAML syntax, duplicate keys, aliases, or a non-mapping.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError([Problem((), f"not UTF-8 text (byte {exc.start})")], source) from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:    # lone surrogates in a str
        raise ConfigError([Problem((), f"not valid Unicode text (character {exc.start})")], source) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[tuple, int] = {}
        problems: list[Problem] = []
        if node is not None:
            _walk_nodes(node, (), lines, problems, set())
        if problems:
            raise ConfigError(problems, source)
        data = loader.construct_document(node) if node is not None else None
    except ConfigError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            reason += f" ({exc.context})"
        raise ConfigError([Problem((), f"YAML: {reason}", mark.line + 1 if mark else None)], source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem((), f"YAML: {str(exc).splitlines()[0] if str(exc) else 'invalid'}")],
                          source) from None
    except RecursionError:
        raise ConfigError([Problem((), "YAML nested too deeply")], source) from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a timestamp like 2024-13-45
        raise ConfigError([Problem((), f"YAML: {exc}")], source) from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem((), f"the document must be a mapping of sections, not {_kind(data)}", 1)],
                          source)
    return Document(data, lines, source)


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__)


# ----------------------------------------------------------------------------------------------
# ${VAR} / ${VAR:-default} substitution
# ----------------------------------------------------------------------------------------------

_SUBST = re.compile(r"\$(\$|\{([^}]*)\}|\{)")
_INNER = re.compile(rf"^({ENV_NAME})(?::-(.*))?$", re.DOTALL)


def substitute_env(data: Any, env: Mapping[str, str], forbidden: frozenset[str] = frozenset(),
                   path: tuple = (), from_env: set[tuple] | None = None) -> tuple[Any, list[Problem]]:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string value (not keys); ``$$`` is a literal ``$``.

    Values are substituted after YAML parsing, so a secret holding ``:`` or newlines cannot change
    the document's structure. Names in ``forbidden`` (the config-signing secret) may not be used.
    Returns the new data and the problems found (missing variables, malformed references); the
    paths whose value took something from the environment are added to ``from_env`` (their values
    are never shown in an error).
    """
    problems: list[Problem] = []
    took = from_env if from_env is not None else set()

    def one(text: str, where: tuple) -> str:
        def repl(m: re.Match) -> str:
            if m.group(1) == "$":
                return "$"
            inner = m.group(2)
            parsed = _INNER.match(inner) if inner is not None else None
            if parsed is None:
                problems.append(Problem(where, f"malformed reference {m.group(0)!r}: use ${{NAME}} or "
                                               "${NAME:-default} (and $$ for a literal $)"))
                return m.group(0)
            name, default = parsed.group(1), parsed.group(2)
            if name in forbidden:
                problems.append(Problem(where, f"${{{name}}} is the config-signing secret and cannot be "
                                               "substituted into the config"))
                return ""
            value = env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    problems.append(Problem(where, f"environment variable {name} is not set "
                                                   f"(set it, or write ${{{name}:-default}})"))
                    return ""
                return default
            took.add(where)
            return value
        return _SUBST.sub(repl, text)

    def walk(value: Any, where: tuple) -> Any:
        if isinstance(value, str):
            return one(value, where) if "$" in value else value
        if isinstance(value, dict):
            return {k: walk(v, where + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, where + (i,)) for i, v in enumerate(value)]
        return value

    return walk(data, path), problems


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------

@dataclass
class LoadedConfig:
    """A validated config with what it came from: the raw document (``${VAR}`` kept) and its version."""

    config: AppConfig
    document: dict[str, Any]      # as written, before substitution: what remote merges apply to
    version: str                  # sha256 of the document (document_version); published on config/state
    source: str | None = None


def document_version(document: Mapping[str, Any]) -> str:
    """The sha256 (hex) of a document's content: key order, layout and comments do not matter.

    Hashes the document as written (``${VAR}`` unexpanded), so published versions never depend on,
    nor reveal anything about, secrets in the environment.
    """
    text = compact_json(_plain(document), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def validate_document(doc: Document, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Substitute environment variables into a parsed document and validate it against AppConfig."""
    env = os.environ if env is None else env
    forbidden = _signing_secret_names(doc.data)
    from_env: set[tuple] = set()
    data, problems = substitute_env(doc.data, env, forbidden, from_env=from_env)
    if problems:
        raise ConfigError([_with_line(p, doc.lines) for p in problems], doc.source)
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems_from(exc, data, doc.lines, from_env), doc.source) from None
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:  # defensive: never leak others
        raise ConfigError([Problem((), f"cannot validate: {type(exc).__name__}: {exc}")], doc.source) from None
    return LoadedConfig(config, doc.data, document_version(doc.data), doc.source)


def _signing_secret_names(data: Mapping[str, Any]) -> frozenset[str]:
    names = {RemoteConfigConfig.model_fields["secret_env"].default}
    try:
        names.add(str(data["service"]["remote_config"]["secret_env"]))
    except (KeyError, TypeError):
        pass
    return frozenset(names)


def _with_line(problem: Problem, lines: dict[tuple, int]) -> Problem:
    if problem.line is not None:
        return problem
    path = problem.path
    while path:                        # the deepest key of the path that is in the file
        if path in lines:
            return Problem(problem.path, problem.reason, lines[path])
        path = path[:-1]
    return problem


def _problems_from(exc: ValidationError, data: Any, lines: dict[tuple, int],
                   from_env: set[tuple] = frozenset()) -> list[Problem]:  # type: ignore[assignment]
    problems = []
    for err in exc.errors(include_url=False):
        path = _document_path(err["loc"], data)
        reason = err["msg"]
        if any(path[:len(p)] == p for p in from_env):
            # the value came (in part) from an environment variable: never shown; a custom validator's own
            # words may quote it, so only pydantic's fixed messages are kept
            if err["type"] in ("value_error", "assertion_error") or "ctx" in err and "error" in err["ctx"]:
                reason = "not a valid value"
            reason += " (the value of an environment variable, not shown)"
        elif err["type"] == "extra_forbidden":
            reason = "unknown key" + _suggestion(path)
        elif err["type"] == "union_tag_invalid":     # e.g. detector.type: foo
            path += (err["ctx"]["discriminator"].strip("'"),)
            reason = f"unknown type {err['ctx']['tag']!r} (expected one of {err['ctx']['expected_tags']})"
        elif err["type"] == "union_tag_not_found":
            path += (err["ctx"]["discriminator"].strip("'"),)
            reason = f"missing: say which one, {_tags_hint(path)}"
        elif err["type"] != "missing" and "input" in err and not isinstance(err["input"], (dict, list)):
            shown = repr(err["input"])
            reason += f" (got {shown if len(shown) <= 40 else shown[:37] + '...'})"
        problems.append(_with_line(Problem(path, reason), lines))
    return sorted(problems, key=lambda p: p.line if p.line is not None else 1 << 30)   # file order


def _tags_hint(path: tuple) -> str:
    tags = []
    for model in _models_at(path[:-1]):
        info = model.model_fields.get(str(path[-1]))
        if info is not None and isinstance(info.default, str):
            tags.append(info.default)
    return " or ".join(f"'{path[-1]}: {t}'" for t in tags) or f"add '{path[-1]}'"


def _document_path(loc: tuple, data: Any) -> tuple:
    """pydantic's error location as a path in the document: drops union tags and class names.

    The tag pydantic puts after a discriminated union's field (``detector`` -> ``blazeface``) is
    dropped even where the document has a key of that name (``detector.blazeface``, a sub-section).
    """
    path: list = []
    current = data
    models: list[type[BaseModel]] = [AppConfig]
    for i, seg in enumerate(loc):
        last = i == len(loc) - 1
        if len(models) > 1 and isinstance(seg, str) and seg in _union_tags(models):
            models = [m for m in models if seg in _union_tags([m])]
            continue
        if isinstance(current, dict) and seg in current:
            path.append(seg)
            current = current[seg]
        elif isinstance(current, list) and isinstance(seg, int) and 0 <= seg < len(current):
            path.append(seg)
            current = current[seg]
        elif last:
            path.append(seg)
        # else: a union member name pydantic puts in the location
        if isinstance(seg, str):
            models = [m for model in models if (info := model.model_fields.get(seg)) is not None
                      for m in section_models(info.annotation)]
    return tuple(path)


def _union_tags(models: list[type[BaseModel]]) -> set[str]:
    """The ``type`` tags of the members of a discriminated union (e.g. blazeface, yunet, haar)."""
    return {info.default for m in models if (info := m.model_fields.get("type")) is not None
            and isinstance(info.default, str)}


def _suggestion(path: tuple) -> str:
    names = _allowed_keys(path[:-1])
    if not names or not path:
        return ""
    close = difflib.get_close_matches(str(path[-1]), names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f" (allowed: {', '.join(sorted(names))}){hint}"


def _allowed_keys(parent: tuple) -> list[str]:
    """Field names of the model at a document path (best effort; unions give the union of members)."""
    return sorted({name for m in _models_at(parent) for name in m.model_fields})


def _models_at(parent: tuple) -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = [AppConfig]
    for seg in parent:
        nxt: list[type[BaseModel]] = []
        for model in models:
            info = model.model_fields.get(str(seg))
            if info is not None:
                nxt.extend(section_models(info.annotation))
        models = nxt
    return models


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------

def load_text(text: str | bytes, source: str | None = None, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Parse and validate YAML text. Raises only :class:`ConfigError`."""
    return validate_document(parse_yaml(text, source), env)


def load_file(path: str | Path, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, parse and validate a config file. Raises only :class:`ConfigError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem((), f"cannot read: {exc.strerror or exc}")], str(path)) from None
    return load_text(data, str(path), env)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> AppConfig:
    """The validated :class:`AppConfig` from ``path`` (default: the first of :data:`DEFAULT_PATHS` found)."""
    return load_file(path if path is not None else default_path(), env).config


def default_path() -> Path:
    """/etc/fer-edge/config.yaml when installed, else ./config.yaml."""
    for candidate in DEFAULT_PATHS:
        if candidate.is_file():
            return candidate
    return DEFAULT_PATHS[-1]


def json_schema() -> dict[str, Any]:
    """JSON Schema of the config file, for editors (e.g. the YAML language server's ``# yaml-language-server: $schema=``)."""
    schema = AppConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "fer-edge config"
    return schema
