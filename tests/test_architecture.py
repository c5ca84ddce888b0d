"""The layout's rules (issue 21), read from the source with the ast module, every import counted,
function-level ones included: no import circles between our modules; serving never imports training
(the service ships without it); nothing under training/ imports Ray (batch inference is serving's);
no module over 350 lines."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests._paths import REPO

PACKAGES = ("training", "serving")
MAX_LINES = 350


def modules(root: Path = REPO) -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The modules `name` imports, wherever the import statement stands, and third-party top names."""
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                found.add(full if full in known else base)
    return found


def graph(root: Path = REPO) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    mods = modules(root)
    known = set(mods)
    ours, external = {}, {}
    for name, path in mods.items():
        found = imports(path, name, known)
        ours[name] = {m for m in found if m in known and m != name}
        external[name] = {m.split(".")[0] for m in found if m.split(".")[0] not in PACKAGES}
    return ours, external


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(TopologicalSorter(edges).static_order())
    except CycleError as err:
        return err.args[1]
    return None


def test_no_import_circles():
    ours, _ = graph()
    found = cycle(ours)
    assert found is None, "import circle: " + " -> ".join(found)


def test_serving_never_imports_training():
    ours, _ = graph()
    wrong = sorted(
        f"{m} imports {t}" for m, ts in ours.items() if m.startswith("serving") for t in ts if t.startswith("training")
    )
    assert not wrong, wrong


def test_nothing_under_training_imports_ray():
    _, external = graph()
    wrong = sorted(m for m, ts in external.items() if m.startswith("training") and "ray" in ts)
    assert not wrong, wrong


def test_no_module_over_350_lines():
    long = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long


@pytest.mark.parametrize(
    "planted, expect",
    [
        ("from training.ship import calibrate\n", "circle"),
        ("def f():\n    from training.corpus import build\n", "serving"),
    ],
)
def test_the_rules_see_a_planted_defect(tmp_path, planted, expect):
    """The checks fail on a copy of the tree with one bad import added (a function-level one too)."""
    import shutil

    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "static", "templates"))
    target = tmp_path / ("training/evaluation/metrics.py" if expect == "circle" else "serving/segment.py")
    target.write_text(target.read_text(encoding="utf-8") + "\n" + planted, encoding="utf-8")
    ours, _ = graph(tmp_path)
    if expect == "circle":
        assert cycle(ours) is not None
    else:
        assert "training.corpus.build" in ours["serving.segment"]
