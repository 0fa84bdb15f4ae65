"""The package's layers hold: a module imports only from its own layer or the layers below.

The layers, bottom to top, are drawn in docs/ARCHITECTURE.md. Every `import` and
`from ... import` in the package is read with `ast`, including the lazy ones inside functions,
because a lazy upward import is still an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (module prefix, layer). The longest matching prefix wins.
LAYERS = {
    "accvideo.core": 0,
    "accvideo.util": 0,
    "accvideo.world": 0,
    "accvideo.models": 1,
    "accvideo.generation": 2,
    "accvideo.media": 2,
    "accvideo.synvid": 3,
    "accvideo.training": 4,
    "accvideo.eval": 5,
    "accvideo.experiments": 6,
    "accvideo.app": 7,
    "accvideo.cli": 8,
    "accvideo.__main__": 8,
    # The toy is the paper's 1D analysis: it stands on the flow-matching core alone.
    "toy": 1,
}


def layer_of(module: str) -> tuple[str, int] | None:
    if module == "accvideo":  # the package's own __init__: docstring and version only
        return ("accvideo", 0)
    best = None
    for prefix, layer in LAYERS.items():
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, layer)
    return best


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a parsed module, relative ones resolved."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            # `from pkg import sub` imports the submodule when there is one
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names] or [(node.lineno, name)]
    return found


def is_upward(own: tuple[str, int], other: tuple[str, int]) -> bool:
    if own[0] == "toy":
        return other[0] not in ("toy", "accvideo.core")
    return other[0] != own[0] and other[1] > own[1]


def upward_imports(files: list[Path], root: Path = ROOT) -> list[str]:
    problems = []
    for path in files:
        module = module_name(path, root)
        own = layer_of(module)
        if own is None:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, target in imported_modules(tree, module, path.name == "__init__.py"):
            other = layer_of(target)
            if other is not None and is_upward(own, other):
                problems.append(f"{path.relative_to(root)}:{line}: {module} (layer {own[1]}, {own[0]}) imports "
                                f"{target} (layer {other[1]}, {other[0]})")
    return problems


def package_files() -> list[Path]:
    return sorted([*(ROOT / "accvideo").rglob("*.py"), *(ROOT / "toy").rglob("*.py")])


def test_every_module_has_a_layer():
    missing = [module_name(p) for p in package_files() if layer_of(module_name(p)) is None]
    assert not missing, f"modules with no layer in LAYERS: {missing}"


def test_no_upward_imports():
    problems = upward_imports(package_files())
    assert not problems, "upward imports (see docs/ARCHITECTURE.md):\n" + "\n".join(problems)


def test_the_check_catches_an_upward_import(tmp_path):
    """The checker itself can fail: a lazy upward import inside a function is reported, with its line."""
    probe = tmp_path / "accvideo" / "models" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("import torch\n\n\ndef f():\n    from ..app import layout  # lazy, still upward\n"
                     "    from accvideo.core import sampling  # downward: fine\n")
    problems = upward_imports([probe], root=tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith("accvideo/models/probe.py:5: accvideo.models.probe (layer 1")
    assert "imports accvideo.app.layout (layer 7" in problems[0]


@pytest.mark.parametrize("module,target,upward", [
    ("accvideo.models.lora", "accvideo.generation", True),
    ("accvideo.generation", "accvideo.models.families", False),
    ("accvideo.core.sampling", "accvideo.util.io", False),
    ("toy.api", "accvideo.core.sampling", False),
    ("toy.api", "accvideo.models.registry", True),
    ("accvideo.cli.main", "toy.api", False),
])
def test_rules(module, target, upward):
    assert is_upward(layer_of(module), layer_of(target)) is upward
