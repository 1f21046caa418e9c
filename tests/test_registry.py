import sys
import types

import pytest

from anomalykit.errors import RegistryError
from anomalykit.registry import Registry


def test_register_get_and_suggestions():
    things = Registry("thing")

    @things.register("square")
    def square(x):
        return x * x

    assert things.get("square")(4) == 16
    assert things.names() == ["square"] and "square" in things
    with pytest.raises(RegistryError, match="unknown thing 'sqare'. Did you mean 'square'"):
        things.get("sqare")
    with pytest.raises(RegistryError, match="registered twice"):
        things.register("square")(lambda x: x)


def test_discovery_tolerates_a_missing_optional_dependency(tmp_path, monkeypatch):
    package = tmp_path / "fakepkg_registry"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text(
        "from anomalykit.registry import Registry\n"
        "import fakepkg_registry as p\n"
        "p.REG.register('good')(object)\n"
    )
    (package / "needs_av.py").write_text("import a_package_that_is_not_installed\n")
    (package / "_private.py").write_text("raise RuntimeError('never imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__("fakepkg_registry")
    module.REG = Registry("thing", package="fakepkg_registry")
    assert module.REG.names() == ["good"]
    assert module.REG.unavailable == {"fakepkg_registry.needs_av": "needs the package 'a_package_that_is_not_installed'"}
    with pytest.raises(RegistryError, match="Not importable.*needs_av"):
        module.REG.get("video_thing")
    sys.modules.pop("fakepkg_registry", None)
