import pytest

from diffkit.domain import Domain
from diffkit.errors import ConfigError
from diffkit.registry import available, get_domain

PLUGIN = """
import dataclasses
from diffkit.domains.toy import domain as toy

domain = dataclasses.replace(toy, name="plugin", description="a third-party test domain")
not_a_domain = 42
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A package registered through a real entry point: a dist-info directory on sys.path."""
    (tmp_path / "diffkit_testplugin").mkdir()
    (tmp_path / "diffkit_testplugin" / "__init__.py").write_text(PLUGIN)
    info = tmp_path / "diffkit_testplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: diffkit-testplugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[diffkit.domains]\nplugin = diffkit_testplugin:domain\n"
        "broken = diffkit_testplugin:not_a_domain\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_the_builtin_toy_domain_registers_through_its_entry_point():
    assert "toy" in available()
    toy = get_domain("toy")
    assert isinstance(toy, Domain) and toy.name == "toy"


def test_a_third_party_plugin_is_found_by_entry_point(plugin):
    assert {"plugin", "toy"} <= set(available())
    domain = get_domain("plugin")
    assert domain.name == "plugin" and domain.description == "a third-party test domain"


def test_an_entry_point_that_is_not_a_domain_is_a_clear_error(plugin):
    with pytest.raises(ConfigError, match="not a diffkit Domain"):
        get_domain("broken")


def test_unknown_domains_list_the_installed_ones():
    with pytest.raises(ConfigError, match=r"unknown domain 'nope'; choose one of: .*toy"):
        get_domain("nope")
