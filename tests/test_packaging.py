"""The installed package has the promised shape: every source folder installed, data shipped."""
import importlib
import tomllib
from importlib import resources
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAPPING = {"nodes": "dragoman.nodes", "graphs": "dragoman.graphs", "kernels": "dragoman.kernels"}


def source_packages() -> set[str]:
    found = set()
    for folder, dotted in MAPPING.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([dotted, *rel.parts]))
    return found


@pytest.mark.skipif(not (REPO / "pyproject.toml").is_file(), reason="source tree not beside the tests")
def test_every_source_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert source_packages() - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - source_packages() == set(), "listed packages without an __init__.py folder"


def test_tests_run_against_the_installed_package():
    import dragoman.nodes

    assert "site-packages" in dragoman.nodes.__file__ or "dist-packages" in dragoman.nodes.__file__
    assert not Path(dragoman.nodes.__file__).is_relative_to(REPO / "nodes")


@pytest.mark.parametrize("dotted", sorted(source_packages()) or sorted(MAPPING.values()))
def test_every_package_imports(dotted):
    importlib.import_module(dotted)


def test_graph_library_is_shipped_as_package_data():
    names = [p.name for p in resources.files("dragoman.graphs").iterdir()]
    assert "segment.yaml" in names and "README.md" in names
