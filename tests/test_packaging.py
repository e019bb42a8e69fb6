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


def test_domain_packages_import_their_own_modules_relatively():
    absolute = [
        f"{path.relative_to(REPO)}:{n}"
        for path in sorted((REPO / "domains").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if line.lstrip().startswith(("from diffkit.domains", "import diffkit.domains"))
    ]
    assert absolute == []
