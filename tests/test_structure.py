"""The shape of the code: arrows that point one way, small modules, typed config, a clean wheel.

- no import cycles among the project's modules (edge/, models/, bench/, tests/helpers/), whether the
  import is at the top of a module or inside a function;
- no function-level imports of the project's own modules in edge/ (they would only hide a cycle;
  lazy imports of heavy optional libraries - cv2, picamera2, tensorflow - stay);
- the config package imports no runtime code;
- the layers of docs/structure.md: no module imports from a layer above its own; the operator's
  tools (edge/ops/) import only the shared contracts; nothing in edge/ imports models/, bench/ or tests/;
- no module in edge/ over 400 lines;
- no config parameter typed ``Any`` in edge/;
- one of each: compact JSON and one-line errors (edge/formatting.py), exit codes (edge/exitcodes.py),
  IoU (edge/geometry.py), the stage list (edge/timing.py);
- no test file imports bench/ code, nor hands it to a child process (``python -c`` code, ``-m bench.x``):
  what tests and benchmarks share lives in tests/helpers/, and the benchmarks import it from there.
- the main path of a new model (models/ outside models/studies/: ``python -m models.train --recipe FILE``)
  does not import models/studies/ (earlier models' trainers, diagnostics), nor hand it to a child process.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT = ("edge", "models", "bench", "tests/helpers")
MAX_LINES = 400
CONFIG_NAMES = ("cfg", "config", "sections", "settings")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for top in PROJECT for p in sorted((REPO / top).rglob("*.py"))}


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, ast.stmt, bool]]:
    """(imported project module, statement, inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: list[tuple[str, ast.stmt, bool]] = []

    def target(name: str) -> str | None:
        while name and name not in MODULES:      # `from pkg import submodule` / names inside a module
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if (t := target(alias.name)):
                        found.append((t, child, in_function))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1] + ([base] if base else []))
                for alias in child.names:
                    if (t := target(f"{base}.{alias.name}") or target(base)):
                        found.append((t, child, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


GRAPH = {name: {t for t, _, _ in _imports(path) if t != name} for name, path in MODULES.items()}


def _parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _cycle() -> list[str] | None:
    """One import cycle, or None. A package's own submodules importing it back are not counted:
    ``edge.config`` re-exporting from ``edge.config.loading`` is how a package exposes its parts."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if nxt in _parents(node):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None and (found := dfs(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(GRAPH):
        if state.get(name) is None and (found := dfs(name)):
            return found
    return None


def test_no_import_cycles_among_project_modules():
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle():
    # the check itself can fail: a made-up arrow back from the config package to the service closes one
    GRAPH["edge.config.base"].add("edge.service.supervisor")
    try:
        assert _cycle() is not None
    finally:
        GRAPH["edge.config.base"].discard("edge.service.supervisor")


def test_no_function_level_imports_of_project_modules_in_edge():
    found = sorted({f"{MODULES[name].relative_to(REPO)}:{stmt.lineno} imports {target}"
                    for name in MODULES if name.startswith("edge")
                    for target, stmt, in_function in _imports(MODULES[name]) if in_function})
    assert not found, "function-level imports of project modules (import at the top):\n" + "\n".join(found)


def test_config_package_imports_no_runtime_code():
    allowed = ("edge.config", "edge.formatting")
    found = [f"{name} imports {target}" for name in MODULES if name == "edge.config" or name.startswith("edge.config.")
             for target in GRAPH[name] if not target.startswith(allowed) and target != "edge"]
    assert not found, "\n".join(found)


#: The layers of edge/, highest first (docs/structure.md): a module imports from its own layer or lower ones.
LAYERS = (
    ("entry", ("edge.cli", "edge.commands")),
    ("service", ("edge.service",)),
    ("control", ("edge.control",)),
    ("runtime", ()),                          # every module of edge/ not named in another layer
    ("config", ("edge.config",)),
    ("base", ("edge.formatting", "edge.exitcodes")),
)
#: What the operator's tools (edge/ops/, beside the service, never below or above it) may import.
OPERATOR_CONTRACTS = ("edge.ops", "edge.config", "edge.control.signing", "edge.publish.topics",
                      "edge.publish.payloads", "edge.publish.mqtt_client", "edge.publish.ratelimit",
                      "edge.state_dir", "edge.formatting", "edge.exitcodes")


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _layer(name: str) -> int:
    """The index of ``name``'s layer in LAYERS (0: highest); the package ``edge`` itself is base."""
    if name == "edge":
        return len(LAYERS) - 1
    for i, (_, prefixes) in enumerate(LAYERS):
        if _under(name, prefixes):
            return i
    return [n for n, _ in LAYERS].index("runtime")


def _upward_imports() -> list[str]:
    found = []
    for name in MODULES:
        if not name.startswith("edge") or _under(name, ("edge.ops",)):
            continue
        for target in sorted(GRAPH[name]):
            if not target.startswith("edge"):
                continue
            if _under(target, ("edge.ops",)) and not _under(name, ("edge.cli", "edge.commands")):
                found.append(f"{name} imports {target} (the operator's tools)")
            elif _layer(target) < _layer(name) and target not in _parents(name):
                found.append(f"{name} ({LAYERS[_layer(name)][0]}) imports {target} ({LAYERS[_layer(target)][0]})")
    return found


def test_no_import_from_a_lower_layer_to_a_higher_one():
    found = _upward_imports()
    assert not found, "imports up the layers of docs/structure.md:\n" + "\n".join(found)


def test_the_layer_check_finds_an_upward_import():
    GRAPH["edge.control.plane"].add("edge.service.supervisor")
    try:
        assert any("edge.control.plane (control) imports edge.service.supervisor" in f for f in _upward_imports())
    finally:
        GRAPH["edge.control.plane"].discard("edge.service.supervisor")


def test_operator_tools_import_only_the_shared_contracts():
    found = [f"{name} imports {target}" for name in MODULES if _under(name, ("edge.ops",))
             for target in sorted(GRAPH[name]) if target != "edge" and not _under(target, OPERATOR_CONTRACTS)]
    assert not found, "edge/ops/ imports more than the shared contracts:\n" + "\n".join(found)


def test_the_runtime_stands_alone():
    # nothing under edge/ imports, or puts on sys.path, the training code, the benchmarks or the tests
    found = []
    for name, path in MODULES.items():
        if not name.startswith("edge"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{name} imports {n}" for n in names if n.split(".")[0] in ("models", "bench", "tests", "conftest")]
    found += [f"{p.relative_to(REPO)} changes sys.path" for name, p in MODULES.items()
              if name.startswith("edge") and "sys.path" in p.read_text()]
    assert not found, "\n".join(found)


def test_the_layers_are_written_in_docs():
    text = (REPO / "docs" / "structure.md").read_text()
    for name, prefixes in LAYERS:
        assert f"**{name}**" in text, f"docs/structure.md does not describe the {name} layer"
    for contract in OPERATOR_CONTRACTS:
        assert f"`{contract}`" in text, f"docs/structure.md does not list {contract} among the operator's contracts"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("edge")))
def test_module_is_small(name):
    lines = MODULES[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(REPO)} has {lines} lines (at most {MAX_LINES}): split it"


def test_no_any_typed_config_parameters_in_edge():
    found = []
    for name, path in MODULES.items():
        if not name.startswith("edge"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                for arg in args:
                    typed_any = arg.annotation is not None and "Any" in ast.unparse(arg.annotation)
                    if typed_any and (arg.arg in CONFIG_NAMES or arg.arg.endswith("_cfg")):
                        found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}({arg.arg}: "
                                     f"{ast.unparse(arg.annotation)})")
    assert not found, "config parameters typed Any:\n" + "\n".join(found)


#: Written once, in the module named: a second definition elsewhere in edge/ fails.
ONE_PLACE = {
    'separators=(",", ":")': "edge/formatting.py",
    "def _one_line": "edge/formatting.py",
    "def one_line": "edge/formatting.py",
    "EXIT_OK =": "edge/exitcodes.py",
    "EXIT_USAGE =": "edge/exitcodes.py",
    "def iou": "edge/geometry.py",
    "def _iou": "edge/geometry.py",
    "STAGES = (": "edge/timing.py",
}


@pytest.mark.parametrize("text", sorted(ONE_PLACE))
def test_written_once(text):
    found = sorted(str(p.relative_to(REPO)) for name, p in MODULES.items()
                   if name.startswith("edge") and text in p.read_text())
    assert set(found) <= {ONE_PLACE[text]}, f"{text!r} belongs in {ONE_PLACE[text]} only, also in: {found}"


def test_tests_mark_themselves_and_leave_sys_path_alone():
    # the slow tier is the tests' own @pytest.mark.slow (a renamed test keeps it); paths: pyproject.toml
    assert not (REPO / "tests" / "slow_tests.py").exists()
    found = [str(p.relative_to(REPO)) for p in sorted((REPO / "tests").glob("*.py")) if "sys.path.insert" in
             p.read_text() and p.name != "test_structure.py"]
    assert not found, f"set paths in pyproject.toml ([tool.pytest.ini_options] pythonpath), not in: {found}"


def _boundary_leaks(sources: dict[str, str]) -> list[str]:
    """Uses of a concrete sink's class (``isinstance(x, MqttSink)``) or of a paho client's private attributes."""
    found = []
    for where, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance"
                    and len(node.args) == 2 and "Sink" in ast.unparse(node.args[1])):
                found.append(f"{where}:{node.lineno} {ast.unparse(node)}")
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and ast.unparse(node.value).split(".")[-1] in ("client", "_client", "paho_client")):
                found.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    return found


def test_sinks_are_used_through_their_interface_and_paho_through_its_public_api():
    sources = {str(p.relative_to(REPO)): p.read_text() for n, p in MODULES.items() if n.startswith("edge")}
    leaks = _boundary_leaks(sources)
    assert not leaks, "talk to a sink through edge.publish.EventSink, to paho through its public API:\n" + \
        "\n".join(leaks)


def test_the_boundary_check_finds_a_leak():
    leaks = _boundary_leaks({"x.py": "if isinstance(sink, StdoutSink):\n    sink.client._client_id = b'x'\n"})
    assert leaks == ["x.py:1 isinstance(sink, StdoutSink)", "x.py:2 sink.client._client_id"]

#: Code handed to a child process in a string: an import of bench/ in ``python -c`` code, or a whole
#: dotted bench module name (``python -m bench.x``, importlib). A bench/ script's path is not code.
BENCH_IN_STRING = re.compile(r"^\s*(from\s+bench[.\s]|import\s+bench\b)|^bench(\.\w+)+$", re.MULTILINE)


def _bench_uses(source: str, name: str) -> list[str]:
    """Where ``source`` imports bench/ code, or names it in a string constant for a child process to run."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        modules = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                   [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        found += [f"{name}:{node.lineno} imports {m}" for m in modules if m.split(".")[0] == "bench"]
        # f-string parts are Constants too, so a script built with an f-string is scanned as well
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and BENCH_IN_STRING.search(node.value):
            found.append(f"{name}:{node.lineno} runs bench code from a string: "
                         f"{BENCH_IN_STRING.search(node.value).group(0).strip()!r}")
    return found


def test_tests_import_no_bench_code():
    # a helper a test needs lives in tests/helpers/ (bench/ imports it from there); a test that checks a
    # benchmark runs its script (python bench/x.py), it does not import it. This file's samples are skipped.
    found = [f for p in sorted((REPO / "tests").rglob("*.py")) if p.name != "test_structure.py"
             for f in _bench_uses(p.read_text(), str(p.relative_to(REPO)))]
    assert not found, "tests use bench/ code (move the helper to tests/helpers/):\n" + "\n".join(found)


def test_the_bench_check_finds_imports_and_child_process_code():
    bad = {
        "from bench.broker import Broker\n": "imports bench.broker",
        "def f():\n    import bench.accuracy\n": "imports bench.accuracy",
        'CODE = "import os\\nfrom bench.publish_demo import demo_event\\n"\n': "'from bench.'",
        'CODE = f"q = {1}\\nimport bench.x\\n"\n': "'import bench'",
        'ARGS = ["python", "-m", "bench.publish_demo", "--count", "3"]\n': "'bench.publish_demo'",
    }
    for source, expected in bad.items():
        found = _bench_uses(source, "sample.py")
        assert len(found) == 1 and expected in found[0], (source, found)
    fine = ('from tests.helpers.broker import Broker\nSCRIPT = "bench/face_size.py"\n'
            'DOC = "benchmarks in bench/ import the helpers"\nfrom benchmarks import x\n')
    assert _bench_uses(fine, "sample.py") == []


#: The main path of a new model (``python -m models.train --recipe FILE``, models/README.md); every other
#: module of models/ outside models/studies/ is held to the same rule.
MAIN_PATH = ("models.recipe", "models.fit", "models.pack", "models.augment", "models.teachers", "models.export",
             "models.card", "models.student", "models.warmstart", "models.ferplus", "models.ckplus",
             "models.taiwanese", "models.evaluate", "models.gpu_prep", "models.train")
STUDIES = "models.studies"
#: a whole dotted studies module name in a string: ``python -m models.studies.x`` argv, importlib
STUDIES_IN_STRING = re.compile(r"^models\.studies(\.\w+)*$")


def _studies_uses(source: str, name: str, package: str = "models") -> list[str]:
    """Where ``source`` (a module of ``package``) imports models/studies/ or names a studies module in a string."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        modules = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                                   # from .studies import x / from . import studies
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            modules = [f"{base}.{a.name}" for a in node.names]   # from models import studies -> models.studies
        found += [f"{name}:{node.lineno} imports {m}" for m in modules if _under(m, (STUDIES,))]
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and STUDIES_IN_STRING.match(node.value):
            found.append(f"{name}:{node.lineno} names {node.value!r} for a child process or importlib")
    return found


def test_the_main_path_of_models_does_not_use_the_studies():
    assert STUDIES in MODULES and all(m in MODULES for m in MAIN_PATH), "models/ moved: update MAIN_PATH"
    main_path = sorted(n for n in MODULES if _under(n, ("models",)) and not _under(n, (STUDIES,)))
    assert set(MAIN_PATH) <= set(main_path)
    found = []
    for n in main_path:
        package = n if MODULES[n].name == "__init__.py" else n.rpartition(".")[0]   # for relative imports
        found += _studies_uses(MODULES[n].read_text(), str(MODULES[n].relative_to(REPO)), package)
    assert not found, ("the main path of models/ uses models/studies/ (move the helper into the main-path module "
                       "and import it from there in the study):\n" + "\n".join(found))


def test_the_studies_check_finds_imports_and_child_process_names():
    bad = {
        "from models.studies.distill import accuracy\n": "imports models.studies.distill.accuracy",
        "from models.studies import select_tta\n": "imports models.studies.select_tta",
        "from models import export, studies\n": "imports models.studies",
        "def f():\n    import models.studies.soup\n": "imports models.studies.soup",
        "from .studies.train_v1 import build_backbone\n": "imports models.studies.train_v1.build_backbone",
        "from . import studies\n": "imports models.studies",
        'CMD = [sys.executable, "-m", "models.studies.train_v1"]\n': "names 'models.studies.train_v1'",
        'mod = importlib.import_module("models.studies")\n': "names 'models.studies'",
    }
    for source, expected in bad.items():
        found = _studies_uses(source, "sample.py")
        assert len(found) == 1 and expected in found[0], (source, found)
    fine = ('from models import export, fit\nfrom models.export import view\nimport studies\n'
            'CODE = "models/studies/distill.py (python -m models.studies.distill)"\n'
            'HELP = "1.0.0: python -m models.studies.train_v1"\n')
    assert _studies_uses(fine, "sample.py") == []
