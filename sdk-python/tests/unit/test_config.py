"""Config files in lymph's shape and what apply_config receives."""

import pytest

from lymph.config import ConfigView, FileConfig
from lymph.exceptions import ConfigurationError


def parse(text):
    return FileConfig.parse("conf/x.yml", text)


def test_the_seeds_shape():
    config = parse("interfaces:\n    Greeting:\n        class: greeting:Greeting\n")
    assert list(config.interfaces) == ["Greeting"]
    assert config.interfaces["Greeting"]["class"] == "greeting:Greeting"
    assert config.socket is None and config.http_port is None


def test_top_level_settings_and_sections():
    config = parse("socket: /tmp/l.sock\nmax_concurrency: 8\nhttp_port: 4080\nregistry: {}\n"
                   "interfaces:\n  Greeting:\n    class: g:G\n    greeting: Hello\n    db: {host: x, port: 5}\n")
    section = config.interfaces["Greeting"]
    assert (config.socket, config.max_concurrency, config.http_port) == ("/tmp/l.sock", 8, 4080)
    assert section.get("greeting") == "Hello"
    assert section.get("db.port") == 5
    assert section.get("db.missing", "default") == "default"
    assert section.get("nope") is None
    with pytest.raises(KeyError):
        section.get_raw("nope")


def test_empty_file_and_empty_section():
    assert parse("").interfaces == {}
    assert parse("interfaces:\n  Listen:\n").interfaces["Listen"] == {}


@pytest.mark.parametrize("text, reason", [
    ("interfaces: [unclosed", "bad config file conf/x.yml: "),
    ("- a\n- b\n", "the top level must be a map"),
    ("interfaces:\n  Greeting: 3\n", "interfaces.Greeting must be a map"),
    ("interfaces: 3\n", "interfaces must be a map"),
    ("http_port: eighty\n", "http_port must be a whole number"),
])
def test_bad_files_name_the_file_and_the_problem(text, reason):
    with pytest.raises(ConfigurationError) as e:
        parse(text)
    assert reason in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read config file .*nope.yml"):
        FileConfig.read(str(tmp_path / "nope.yml"))


def test_config_view_is_a_dict():
    view = ConfigView({"a": {"b": 1}, "a.b": 2})
    assert view.get("a.b") == 2  # an exact key wins, as lymph's flat keys
    assert dict(view) == {"a": {"b": 1}, "a.b": 2}
    assert view.as_dict() == dict(view)
