"""Imports inside tf_lowprec run one way: down the floors, never in a circle.

Floors, lowest first (DESIGN.md): a module may import its own floor or a
lower one. Every import statement counts, also those inside functions
(lazy imports only hide a dependency, they do not remove it).

The package root `tf_lowprec/__init__.py` is the one aggregator above every
floor (it imports each subpackage for `import tf_lowprec`). The only upward
edges allowed are the documented lazy forwards of deprecated public names
in `ALLOWED_UPWARD` (each must stay inside a function).
"""

import ast
import pathlib

import tf_lowprec

PACKAGE = pathlib.Path(tf_lowprec.__file__).parent

FLOORS = {
    "formats": 0,
    "data": 0,
    "models": 0,
    "validation": 0,
    "ops": 1,
    "quantizers": 2,
    "layers": 3,
    "pruning": 3,
    "optimizers": 4,
    "training": 5,
    "callbacks": 5,
    "recipes": 6,
    "export": 6,
    "memory": 6,
    "distribute": 6,
    "experiments": 7,
    "quickstart": 7,
}

# (importing module, imported module): lazy forwards kept for users of the
# old paths (`tf_lowprec.optimizers.swalp` and friends moved to recipes/;
# `optimizers.get("low_precision_sgd")` builds the recipe's optimizer).
ALLOWED_UPWARD = {
    ("tf_lowprec.optimizers", "tf_lowprec.recipes.swalp_training"),
    ("tf_lowprec.optimizers.registry", "tf_lowprec.recipes.swalp_training"),
}


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted):
    relative = pathlib.Path(*dotted.split(".")[1:]) if "." in dotted else pathlib.Path()
    base = PACKAGE / relative
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports(path):
    """`[(imported module, lazy)]` of every tf_lowprec import in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []

    def visit(node, lazy):
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            )
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "tf_lowprec":
                        found.append((alias.name, inner))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = _module_name(path).split(".")
                    if path.name != "__init__.py":
                        package.pop()
                    package = package[: len(package) - (child.level - 1)]
                    base = ".".join(package + ([base] if base else []))
                if base.split(".")[0] != "tf_lowprec":
                    continue
                for alias in child.names:
                    candidate = f"{base}.{alias.name}"
                    found.append((candidate if _is_module(candidate) else base, inner))
            visit(child, inner)

    visit(tree, False)
    return found


def _floor(module):
    parts = module.split(".")
    if len(parts) == 1:
        return None  # the package root
    return FLOORS.get(parts[1], "unknown")


def _graph():
    edges = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        edges[_module_name(path)] = _imports(path)
    return edges


GRAPH = _graph()


def test_every_module_has_a_floor():
    unknown = sorted(m for m in GRAPH if _floor(m) == "unknown")
    assert unknown == [], "add these to FLOORS (and DESIGN.md)"


def test_imports_only_go_down():
    offenders = []
    used_exceptions = set()
    for module, imports in GRAPH.items():
        here = _floor(module)
        if here is None:
            continue
        for target, lazy in imports:
            there = _floor(target)
            if there is None:
                offenders.append(f"{module} -> {target} (the package root)")
            elif there > here:
                if (module, target) in ALLOWED_UPWARD and lazy:
                    used_exceptions.add((module, target))
                else:
                    offenders.append(f"{module} (floor {here}) -> {target} (floor {there})")
    assert not offenders, "\n".join(offenders)
    assert used_exceptions == ALLOWED_UPWARD, "an allowed forward is gone: drop it from the list"


def test_no_import_cycles():
    nodes = set(GRAPH)
    adjacency = {
        m: sorted({t for t, _ in imports if t in nodes and t != m}) for m, imports in GRAPH.items()
    }
    # Tarjan's strongly connected components.
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in adjacency[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(nodes):
        if v not in index:
            connect(v)
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)

