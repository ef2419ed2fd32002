"""The runner's pure parts: importing classes and building the container
from a config file; its exit codes for bad input."""

import pytest

import lymph
from lymph import cli
from lymph.config import FileConfig
from lymph.exceptions import ConfigurationError


class Hello(lymph.Interface):
    @lymph.rpc()
    def hi(self):
        return self.config.get("greeting", "hi")


class NotAnInterface:
    pass


def test_import_object_from_the_config_directory(tmp_path):
    (tmp_path / "mymod_for_runner.py").write_text("import lymph\nclass Svc(lymph.Interface):\n    pass\n")
    cls = cli.import_object("mymod_for_runner:Svc", str(tmp_path))
    assert cls.__name__ == "Svc"


@pytest.mark.parametrize("spec, message", [
    ("no_such_module_xyz:Svc", "cannot import no_such_module_xyz:Svc: ModuleNotFoundError"),
    ("test_runner:Nope", "module test_runner has no Nope"),
    ("justaname", "expected module:Class"),
])
def test_import_errors_are_one_line(spec, message):
    with pytest.raises(ConfigurationError) as e:
        cli.import_object(spec)
    assert message in str(e.value)


def test_build_names_interfaces_by_their_key_and_applies_config():
    config = FileConfig.parse("x.yml", "http_port: 4080\ninterfaces:\n  Hi@1.2.0:\n    class: test_runner:Hello\n"
                                       "    greeting: hey\n")
    container = cli.build(config, socket="/tmp/x.sock")
    interface = container.interfaces["Hi"]
    assert (interface.name, interface.version, interface.hi()) == ("Hi", "1.2.0", "hey")
    hello = container.hello()
    assert (hello.http_port, hello.max_concurrency, hello.interfaces[0].name) == (4080, 64, "Hi")
    assert container.socket == "/tmp/x.sock"


@pytest.mark.parametrize("text, message", [
    ("interfaces: {}\n", "names no interfaces"),
    ("interfaces:\n  A: {}\n", "interfaces.A has no class"),
    ("interfaces:\n  A:\n    class: test_runner:NotAnInterface\n", "is not a lymph.Interface subclass"),
])
def test_build_refuses_bad_configs(text, message):
    with pytest.raises(ConfigurationError, match=message):
        cli.build(FileConfig.parse("x.yml", text))


def test_bad_configs_exit_64_with_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yml"
    path.write_text("interfaces:\n  A:\n    class: nowhere_xyz:A\n")
    assert cli.main(["instance", "--config", str(path), "--socket", str(tmp_path / "s.sock")]) == 64
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot import nowhere_xyz:A")
    assert cli.main(["instance", "--config", str(tmp_path / "missing.yml")]) == 64
    assert cli.main(["instance", "--config", str(path), "--loglevel", "LOUD"]) == 64
