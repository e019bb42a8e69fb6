"""``import diffkit`` stays light: the public API loads neither scipy nor Lightning."""

import json
import subprocess
import sys

HEAVY = ("scipy", "lightning", "pytorch_lightning")


def loaded_after(code: str) -> dict:
    """Which of torch and HEAVY a fresh interpreter has imported after running ``code``."""
    names = ("torch", *HEAVY)
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {names}}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_diffkit_loads_nothing_heavy():
    assert loaded_after("import diffkit") == {"torch": False, **dict.fromkeys(HEAVY, False)}


def test_the_public_api_loads_neither_scipy_nor_lightning():
    code = (
        "import diffkit\nfor name in diffkit.__all__:\n    name == 'fit' or getattr(diffkit, name)"
    )
    assert loaded_after(code) == {"torch": True, **dict.fromkeys(HEAVY, False)}


def test_every_public_name_resolves_and_unknown_names_raise():
    import diffkit

    assert all(
        getattr(diffkit, n) is not None for n in diffkit.__all__ if n != "fit"
    )  # fit: Lightning
    assert diffkit.sample is diffkit.sampling.sample and "sample" in dir(diffkit)
    try:
        diffkit.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no attribute 'no_such_name'" in str(e)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
