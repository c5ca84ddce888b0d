"""Where things are, and skips for what a user's clone may lack (../shared)."""

from pathlib import Path

import pytest

from serving.defaults import REPO, SHARED  # noqa: F401 (re-exported for the tests)
from training.defaults import DATA, EXAMPLE
from training.defaults import SAUDINEWSNET as CORPUS

TINY_DATA = DATA / "tiny"


def need_example() -> Path:
    if not EXAMPLE.is_file():
        pytest.skip(f"needs the labelled example {EXAMPLE} (../shared is not beside this clone)")
    return EXAMPLE


def need_corpus() -> Path:
    if not any(CORPUS.glob("*.zip")):
        pytest.skip(f"needs the SaudiNewsNet corpus in {CORPUS} (../shared is not beside this clone)")
    return CORPUS


def service_endpoints() -> list[str]:
    """The POST routes of the service, read from serving/service.py (every method under @bentoml.api), so a
    new endpoint is fuzzed, size-limited and documented without anyone editing a list in the tests."""
    import ast

    tree = ast.parse((REPO / "serving" / "service.py").read_text(encoding="utf-8"))
    routes = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                if isinstance(target, ast.Attribute) and target.attr == "api":
                    route = next((k.value.value for k in getattr(dec, "keywords", []) if k.arg == "route"), None)
                    routes.append(route or f"/{node.name}")
    return sorted(routes)


def cli_commands() -> list[str]:
    """Every `mudraj` command and command group, from the typer app itself."""
    import typer

    from training.cli import app

    return sorted(typer.main.get_command(app).commands)
