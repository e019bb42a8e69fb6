"""The README's commands are the ones CI runs, so a new user gets what CI tested."""

import re

from tests.reference import REPO


def bash_blocks(text: str) -> list[list[str]]:
    return [b.strip().splitlines() for b in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_ci_runs_the_readme_install_and_test_commands():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    blocks = bash_blocks(readme)
    install = next(b for b in blocks if any("pip install" in line for line in b))
    test = next(b for b in blocks if any("pytest" in line for line in b))
    for line in install + test:
        assert line in ci, f"README command {line!r} is not run by .ci/run"
    assert "pip install torch==2.13.0" in install
