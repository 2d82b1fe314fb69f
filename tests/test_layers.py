"""The code's layers, checked: pure decision modules import no module that does I/O,
commands import no other command, and kcm's vocabulary is spelt in one place."""

import ast
import re
from pathlib import Path

import pytest

KCM = Path(__file__).resolve().parent.parent / "kcm"

PURE = {
    "cpuset", "inputs", "errors", "names", "model", "topology", "allocate", "selection",
    "mutate", "node_report", "doctor", "enforcement", "node_patch", "report", "manifests",
    "jsontext", "yamltext", "helptext",
}
"""Modules that decide or describe: data in, data out (docs/architecture.md)."""

IO_CALLS = ("open", "listdir", "scandir", "walk", "unlink", "rename", "mkdir", "makedirs",
            "rmtree", "kill", "sched_setaffinity", "urlopen", "socket", "Popen", "run",
            "environ", "getenv")


def kcm_imports(path: Path) -> set[str]:
    """Every kcm module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kcm"):
            if node.module == "kcm":
                found.update(f"kcm.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("kcm"))
    return found


def module_path(name: str) -> Path:
    return KCM / f"{name}.py"


@pytest.mark.parametrize("name", sorted(PURE))
def test_pure_modules_import_only_pure_modules(name):
    allowed = {f"kcm.{other}" for other in PURE} | {"kcm.__version__"}
    assert kcm_imports(module_path(name)) <= allowed, name


@pytest.mark.parametrize("name", sorted(PURE))
def test_pure_modules_touch_no_files_processes_or_network(name):
    tree = ast.parse(module_path(name).read_text())
    calls = {node.func.attr if isinstance(node.func, ast.Attribute) else
             getattr(node.func, "id", "") for node in ast.walk(tree) if isinstance(node, ast.Call)}
    names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not calls & set(IO_CALLS), name
    assert "environ" not in names, name


def test_every_module_is_placed_in_a_layer_of_the_architecture_map():
    text = (KCM.parent / "docs" / "architecture.md").read_text()
    modules = [path for path in KCM.rglob("*.py") if path.name not in ("__init__.py",
                                                                         "__main__.py")]
    missing = [str(path.relative_to(KCM.parent)) for path in modules
               if f"`{path.relative_to(KCM.parent)}`" not in text
               and path.parent.name != "commands"]
    assert not missing


def test_commands_import_no_other_command():
    for path in (KCM / "commands").glob("*.py"):
        assert not {name for name in kcm_imports(path) if name.startswith("kcm.commands")}, path


def test_lower_layers_import_no_command():
    for path in KCM.glob("*.py"):
        if path.name != "cli.py":
            assert not {n for n in kcm_imports(path) if n.startswith("kcm.commands")}, path


VOCABULARY = [r'"kcm\.dev', r"'kcm\.dev", r'"/host/proc', r'"/etc/kcm"', r'"/opt/bin"',
              r'"kcm-system"', r'"-cores"|\}-cores', r'ghcr\.io/']
"""String literals that belong to kcm/names.py (and, for KCM_* names, kcm/env.py)."""


@pytest.mark.parametrize("pattern", VOCABULARY)
def test_the_vocabulary_is_spelt_only_in_names(pattern):
    offenders = []
    for path in KCM.rglob("*.py"):
        if path.name in ("names.py", "helptext.py"):  # helptext: generated from the parser
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(pattern, code) and not code.strip().startswith(('"""', "``")):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert not offenders


def test_kcm_environment_variables_are_read_only_in_env():
    for path in KCM.rglob("*.py"):
        if path.name in ("env.py",):
            continue
        text = path.read_text()
        assert not re.search(r"environ(\.get)?\(?\[?[\"']KCM_|getenv\([\"']KCM_", text), path


def test_every_kcm_variable_is_spelt_in_one_module():
    """A KCM_* variable kcm reads is named by one module: env.py, or names.py for the few
    that others set too (manifests, the webhook); everyone else imports the name."""
    from kcm.env import VARIABLES

    for name in VARIABLES:
        spelt = sorted(path.name for path in KCM.rglob("*.py") if path.name != "helptext.py"
                       and re.search(rf"[\"']{name}[\"']", path.read_text()))
        assert len(spelt) == 1 and spelt[0] in ("env.py", "names.py"), (name, spelt)


def test_no_import_cycle():
    """No module imports, even lazily, one that imports it back (directly or not)."""
    modules = {".".join(path.relative_to(KCM.parent).with_suffix("").parts)
               .removesuffix(".__init__"): path for path in KCM.rglob("*.py")}
    graph = {name: (kcm_imports(path) & set(modules)) - {name, "kcm"}
             for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        for other in sorted(graph[name]):
            assert other not in trail, " -> ".join([*trail[trail.index(other):], other])
            if other not in done:
                visit(other, [*trail, other])
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
