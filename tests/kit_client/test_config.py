"""kit.config: a service's file, its environment overrides cast to the file's types, and typed reads that name the key."""

import pytest

from kit import config
from kit.config import ConfigError, load_config


@pytest.fixture
def demo(tmp_path, monkeypatch):
    (tmp_path / "demo.yaml").write_text(
        "port: 8000\ntimeout_s: 2.5\nhttps: false\nname: digits\nmode: int8\ndatabase_url: sqlite://\n")
    monkeypatch.setattr(config, "CONFIG_DIR", tmp_path)
    for name in ("DEMO_PORT", "DEMO_TIMEOUT_S", "DEMO_HTTPS", "DEMO_NAME", "DEMO_MODE", "DEMO_DATABASE_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_file_is_read_with_its_types(demo):
    cfg = load_config("demo")
    assert (cfg.integer("port"), cfg.number("timeout_s"), cfg.flag("https"), cfg.text("name")) == (8000, 2.5, False, "digits")
    assert cfg.number("port") == 8000.0 and isinstance(cfg.number("port"), float)


def test_an_environment_override_is_cast_to_the_files_type(demo):
    demo.setenv("DEMO_PORT", "9003")
    demo.setenv("DEMO_TIMEOUT_S", "7")
    demo.setenv("DEMO_HTTPS", "yes")
    cfg = load_config("demo")
    assert (cfg.integer("port"), cfg.number("timeout_s"), cfg.flag("https")) == (9003, 7.0, True)


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("DEMO_PORT", "80.5", "demo.port (from $DEMO_PORT): expected an integer, got '80.5'"),
    ("DEMO_PORT", "٨٠", "demo.port (from $DEMO_PORT): expected an integer, got '٨٠'"),  # int() alone would take them
    ("DEMO_TIMEOUT_S", "soon", "demo.timeout_s (from $DEMO_TIMEOUT_S): expected a number, got 'soon'"),
    ("DEMO_HTTPS", "maybe", "demo.https (from $DEMO_HTTPS): expected a boolean (true/false), got 'maybe'"),
])
def test_a_bad_override_stops_start_up_naming_the_key_and_the_variable(demo, name, value, expected):
    demo.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_config("demo")
    assert str(refused.value) == expected


def test_a_typed_read_of_a_value_of_another_type_names_the_key(demo):
    cfg = load_config("demo")
    with pytest.raises(ConfigError, match=r"demo.name: expected an integer, got 'digits'"):
        cfg.integer("name")
    with pytest.raises(ConfigError, match=r"demo.https: expected an integer, got False"):
        cfg.integer("https")
    with pytest.raises(ConfigError, match=r"demo.port: expected text, got 8000"):
        cfg.text("port")
    with pytest.raises(ConfigError, match=r"demo.missing: no such configuration key"):
        cfg.text("missing")


def test_a_choice_accepts_only_its_options(demo):
    assert load_config("demo").choice("mode", ("float32", "int8")) == "int8"
    demo.setenv("DEMO_MODE", "int4")
    with pytest.raises(ConfigError, match=r"demo.mode: expected one of float32, int8, got 'int4'"):
        load_config("demo").choice("mode", ("float32", "int8"))


def test_an_alias_sets_a_key_and_the_prefixed_name_wins(demo):
    demo.setenv("DATABASE_URL", "postgres://a")
    assert load_config("demo", aliases={"database_url": "DATABASE_URL"}).text("database_url") == "postgres://a"
    demo.setenv("DEMO_DATABASE_URL", "postgres://b")
    assert load_config("demo", aliases={"database_url": "DATABASE_URL"}).text("database_url") == "postgres://b"
