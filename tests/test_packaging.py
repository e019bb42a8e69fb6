"""Every package in the tree is installed: a wheel holds exactly what pyproject lists."""

import tomllib

from tests.reference import REPO


def test_pyproject_lists_every_package_of_diffkit_and_the_domains():
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = set()
    for root, name in (("diffkit", "diffkit"), ("domains", "diffkit.domains")):
        for init in (REPO / root).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / root).parts
            found.add(".".join((name, *parts)))
    assert found == listed
