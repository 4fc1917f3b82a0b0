"""The package's shape: folders by purpose, imports one way (no circle between modules, no folder importing a
folder above it), read from the code's own import statements (module level and inside functions alike) and from
the modules it imports by name (a registry's declared built-ins, ``importlib.import_module("...")``)."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "dynnn_lib"
# bottom to top: a folder may import only folders before it in this list (and itself); the same order lists the
# folders in docs/layout.md
from dynnn_lib.reports.readme import LAYERS  # noqa: E402


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["dynnn_lib", *parts])] = p
    return out


# calls that import a module named by a string: a registry's declared built-ins (core/registry.Registry.declare, or
# its constructor), importlib's import_module
STRING_IMPORTS = ("declare", "import_module", "Registry")


def _string_imports(tree: ast.AST) -> set[str]:
    """The module names, as string literals, that `tree` passes to a call of :data:`STRING_IMPORTS`."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if fn in STRING_IMPORTS:
                out |= {a.value for arg in node.args for a in ast.walk(arg)
                        if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports (a name imported from a package counts as its submodule when
    one exists by that name), by statement or by name (:func:`_string_imports`)."""
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    tree = ast.parse(path.read_text())
    out = _string_imports(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(here[:len(here) - node.level + 1]) if node.level else ""
            target = ".".join(x for x in (base, node.module or "") if x)
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if sub in modules else target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in modules and m != name}


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_import_circle_in_the_package():
    graph = _graph()
    state, stack, circles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                circles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_folder_imports_only_the_folders_below_it():
    upward = [f"{m} -> {n}" for m, deps in _graph().items() for n in deps
              if _layer(m) is not None and _layer(n) is not None and _layer(n) > _layer(m)]
    assert not upward, "imports that run up: " + ", ".join(sorted(upward))


def test_a_module_imported_by_name_counts_as_an_import():
    """A registry's declared built-ins are imports the layer test sees: core naming a module above it fails, and
    every module the registries declare is an edge of the graph (declared where a layer may import it)."""
    from dynnn_lib.core import registry

    snippet = ast.parse('registry.EXPERIMENTS.declare("dynnn_lib.workbench.plan")\nimportlib.import_module("x.y")')
    assert _string_imports(snippet) == {"dynnn_lib.workbench.plan", "x.y"}
    graph = _graph()
    registries = (registry.METHODS, registry.SOURCES, registry.EXPERIMENTS, registry.HEAD_RULES, registry.METRICS)
    assert all(r.builtins for r in registries), "a registry with no declared built-ins finds none"
    declared = {m for r in registries for m in r.builtins}
    assert {"dynnn_lib.experiments.catalogue", "dynnn_lib.workbench.plan", "dynnn_lib.evaluation.routing",
            "dynnn_lib.evaluation.metrics"} <= declared
    assert declared <= set().union(*graph.values()), "a registry declares a module no module imports by name"
    assert all(m.startswith("dynnn_lib.core.") for m in graph["dynnn_lib.core.registry"]), "core names a layer above it"


@pytest.mark.parametrize("folder", [p for p in sorted(PKG.iterdir()) if p.is_dir() and (p / "__init__.py").exists()],
                         ids=lambda p: p.name)
def test_every_folder_says_what_lives_there(folder):
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
    assert doc and len(doc.split()) >= 20, f"{folder.name}/__init__.py needs a docstring saying what lives there"
    assert {p.parent.name for p in PKG.glob("*/__init__.py")} | {"cli"} >= set(LAYERS) - {"cli"}


def test_nothing_outside_dynamicnns_package_names_its_parameters():
    """DynamicNN is a method like the others: the generic layers never name its parameters (the experiments,
    which describe DynamicNN's variants, and the explorer, its own controls, may)."""
    from dataclasses import fields

    from dynnn_lib.methods.dynamicnn import Params

    names = {f.name for f in fields(Params)}
    generic = ("core", "data", "model", "evaluation", "engine", "reports")
    leaks = []
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG)
        if rel.parts[0] in generic or rel.parts[0] in ("methods",) and rel.parts[1] != "dynamicnn":
            for node in ast.walk(ast.parse(p.read_text())):
                word = node.attr if isinstance(node, ast.Attribute) else node.value if isinstance(node, ast.Constant) \
                    else node.id if isinstance(node, ast.Name) else None
                if isinstance(word, str) and word in names:
                    leaks.append(f"{rel}:{node.lineno} {word}")
    assert not leaks, "DynamicNN's parameters named outside its package: " + ", ".join(leaks)
