"""The public API carries type hints (the package ships `py.typed`, PEP 561).

The public API is every name a public module exports: its `__all__` where it
has one, otherwise the public names a subpackage (`tf_lowprec.optimizers`,
...) re-exports from tf_lowprec; plus every `::: target` of the API reference
(docs/api/*.md). For each function, every parameter and the return carry an
annotation; for each class, `__init__`'s parameters and every public method
(`call`, `build`, `update_step`, `get_config`, `from_config`, properties, ...)
defined by tf_lowprec. Each annotation must also resolve (`typing.get_type_hints`,
with the names a module imports under `if TYPE_CHECKING:`), so a hint that
names something that does not exist fails too.
"""

import ast
import importlib
import inspect
import pathlib
import re
import sys
import typing

import pytest

import tf_lowprec

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC_TARGETS = sorted(
    {
        target
        for page in (ROOT / "docs" / "api").glob("*.md")
        for target in re.findall(r"^::: (\S+)\s*$", page.read_text(), re.MULTILINE)
    }
)
SUBPACKAGES = tuple(f"tf_lowprec.{name}" for name in tf_lowprec._SUBPACKAGES)


def _ours(obj):
    return (getattr(obj, "__module__", None) or "").startswith("tf_lowprec")


def _resolve(dotted):
    """The module or object a dotted `tf_lowprec...` path names."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _exports(module):
    """`{qualified name: object}` that a public module exports."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name for name, value in vars(module).items()
            if not name.startswith("_") and not inspect.ismodule(value) and _ours(value)
        ]
    return {f"{module.__name__}.{name}": getattr(module, name) for name in names}


def _modules_with_all():
    package = pathlib.Path(tf_lowprec.__file__).parent
    for path in sorted(package.rglob("*.py")):
        if "__all__" not in path.read_text():
            continue
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if not any(part.startswith("_") for part in parts):
            yield ".".join(parts)


def public_api():
    """`{qualified name: object}` of the public API (functions and classes)."""
    api = {}
    for dotted in (*SUBPACKAGES, *_modules_with_all(), *DOC_TARGETS):
        obj = _resolve(dotted)
        api.update(_exports(obj) if inspect.ismodule(obj) else {dotted: obj})
    return {
        name: obj for name, obj in sorted(api.items())
        if (inspect.isclass(obj) or callable(obj)) and _ours(obj)
    }


def _callables(name, obj):
    """`[(qualified name, function, is_init)]` to check for one API object."""
    if not inspect.isclass(obj):
        return [(name, obj, False)]
    found, seen = [], set()
    members = [
        (attr, raw) for klass in obj.__mro__ if _ours(klass) for attr, raw in vars(klass).items()
    ]
    for attr, raw in members:
        if (attr.startswith("_") and attr != "__init__") or attr in seen:
            continue
        seen.add(attr)
        if isinstance(raw, property):
            function = raw.fget
        elif isinstance(raw, (classmethod, staticmethod)):
            function = raw.__func__
        elif inspect.isfunction(raw):
            function = raw
        else:
            continue
        if function is not None and _ours(function):
            found.append((f"{name}.{attr}", function, attr == "__init__"))
    return found


def _type_checking_names(function):
    """Names that `function`'s module imports under `if TYPE_CHECKING:`."""
    module = sys.modules[function.__module__]
    namespace = dict(vars(module))
    tree = ast.parse(inspect.getsource(module))
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            exec(compile(ast.Module(node.body, []), module.__file__, "exec"), namespace)
    return namespace


def missing_annotations(function, is_init):
    """Unannotated parameters (and return) of `function`, as strings."""
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    missing = [
        p.name for i, p in enumerate(params)
        if p.annotation is inspect.Parameter.empty and not (i == 0 and p.name in ("self", "cls"))
    ]
    if not is_init and signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def _checked():
    """Each function once (a name re-exported by several modules is checked once)."""
    found, seen = [], set()
    for name, obj in public_api().items():
        for entry in _callables(name, obj):
            if id(entry[1]) not in seen:
                seen.add(id(entry[1]))
                found.append(entry)
    return found


API = public_api()
CHECKED = _checked()


def test_the_walk_finds_the_public_api():
    # The walk is not vacuous: it reaches the documented names and their methods.
    for name in ("tf_lowprec.optimizers.GRDA", "tf_lowprec.quantizers.Quantizer",
                 "tf_lowprec.formats.FixedPoint", "tf_lowprec.ops.quantize.quantize"):
        assert name in API
    checked = {name for name, _, _ in CHECKED}
    assert "tf_lowprec.quantizers.Quantizer.get_config" in checked
    assert "tf_lowprec.quantizers.Quantizer.from_config" in checked
    assert "tf_lowprec.optimizers.GRDA.update_step" in checked
    assert len(CHECKED) > 200


def test_the_check_flags_a_missing_hint():
    def bare(x, y: int = 0):
        return x

    def hinted(x: int, *args: int, **kwargs: str) -> int:
        return x

    assert missing_annotations(bare, False) == ["x", "return"]
    assert missing_annotations(hinted, False) == []


@pytest.mark.parametrize(
    "name,function,is_init", CHECKED, ids=[name for name, _, _ in CHECKED]
)
def test_public_callable_is_annotated(name, function, is_init):
    assert missing_annotations(function, is_init) == [], f"{name}: add type hints"
    typing.get_type_hints(function, globalns=_type_checking_names(function))

