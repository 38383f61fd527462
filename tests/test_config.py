"""Config: the ahserver format, typed validation with paths, substitution, configValue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ahcore.config import ConfigError, config_value, load_config


def write_config(tmp_path, cfg) -> None:
    (tmp_path / "conf").mkdir(exist_ok=True)
    (tmp_path / "conf" / "config.json").write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))


AHSERVER_SAMPLE = {
    "databases": {
        "aiocfae": {
            "driver": "aiomysql",
            "async_mode": True,
            "coding": "utf8",
            "dbname": "cfae",
            "kwargs": {"user": "test", "db": "cfae", "password": "test123", "host": "localhost"},
        }
    },
    "website": {
        "paths": [["$[workdir]$/../usedpkgs/antd", "/antd"], ["$[workdir]$/../wolon", ""]],
        "host": "0.0.0.0",
        "port": 8080,
        "coding": "utf-8",
        "indexes": ["index.html", "index.tmpl", "index.dspy", "index.md"],
        "visualcoding": {"default_root": "/samples/vc/test", "jrjpath": "/samples/vc/default"},
        "processors": [[".xlsxds", "xlsxds"], [".tmpl.js", "tmpl"], [".dspy", "dspy"]],
    },
    "langMapping": {"zh-CN": "zh-cn", "en-US": "en"},
}


def test_ahserver_sample_loads_with_unknown_keys_kept(tmp_path):
    write_config(tmp_path, AHSERVER_SAMPLE)
    cfg = load_config(tmp_path)
    assert cfg.website.port == 8080
    assert cfg.website.paths[0] == (f"{tmp_path}/../usedpkgs/antd", "/antd")
    assert cfg.databases["aiocfae"].kwargs["db"] == "cfae"
    # unknown keys are kept and reachable
    assert config_value(cfg.raw, ".website.visualcoding.jrjpath") == "/samples/vc/default"
    assert config_value(cfg.raw, "website.port") == 8080
    assert config_value(cfg.raw, ".website.paths.1.1") == ""
    assert config_value(cfg.raw, ".website.nope.deeper", "dflt") == "dflt"


def test_every_problem_is_listed_with_its_path_and_type(tmp_path):
    write_config(
        tmp_path,
        {
            "website": {"port": "eighty", "paths": [["a", 3]], "allowListFolder": "yes"},
            "databases": {"db1": {"dbname": "x"}, "db2": {"driver": "sqlite", "maxconn": "ten"}},
        },
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    problems = info.value.problems
    assert "website.port: expected integer, got string" in problems
    assert "website.paths[0][1]: expected string, got integer" in problems
    assert "website.allowListFolder: expected boolean, got string" in problems
    assert "databases.db1.driver: required key is missing" in problems
    assert "databases.db2.maxconn: expected integer, got string" in problems
    assert "website.port: expected integer, got string" in str(info.value)


def test_malformed_json_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found; is .* the site folder"):
        load_config(tmp_path)
    write_config(tmp_path, '{"website": {"port": 80,}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    "text, where, reason",
    [
        ('{"website": {"port": 80,}}', "line 1, column 25", "trailing comma in object"),
        ('{\n  "website": {\n    "paths": [["a", ""]],,\n  }\n}', "line 3, column 26", "object keys must be strings"),
        ('{\n  "name": "Café",\n  oops: 1\n}', "line 3, column 3", "object keys must be strings"),
        ('{"website": {"paths": [', "line 1, column 24", "the file ends too early"),
        ("", "line 1, column 1", "the file is empty"),
    ],
)
def test_invalid_json_names_the_file_line_and_column(tmp_path, text, where, reason):
    write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{tmp_path / 'conf' / 'config.json'}, {where}: not valid JSON (")
    assert reason in problem


def test_a_config_that_is_not_utf8_says_so_where(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.json").write_bytes(b'{\n "a": "\xe9t\xe9"}')
    with pytest.raises(ConfigError, match=r"line 2, column 8: not valid JSON \(not UTF-8 text"):
        load_config(tmp_path)


def test_a_byte_order_mark_is_tolerated(tmp_path):
    (tmp_path / "conf").mkdir()
    body = json.dumps({"website": {"paths": [["wwwroot", ""]]}}).encode()
    (tmp_path / "conf" / "config.json").write_bytes(b"\xef\xbb\xbf" + body)
    assert load_config(tmp_path).website.paths == [("wwwroot", "")]


@pytest.mark.parametrize(
    "cfg, problem",
    [
        ({}, 'website: required key is missing; add "website": {"paths": '),
        ({"website": {"port": 80}}, "website.paths: required key is missing; list the content roots"),
        ({"website": {"paths": []}}, "website.paths: is empty; list the content roots"),
    ],
)
def test_a_config_without_content_roots_is_an_error(tmp_path, cfg, problem):
    write_config(tmp_path, cfg)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.problems[0].startswith(problem), info.value.problems


def test_substitutions_come_from_a_fixed_table(tmp_path):
    write_config(
        tmp_path,
        {
            "website": {
                "cookie_secret": "$[ENV:SITE_SECRET]$",
                "paths": [["$[ProgramPath]$/w", ""]],
            },
            "x": "$[workdir]$",
        },
    )
    cfg = load_config(tmp_path, program_path=tmp_path / "prog", environ={"SITE_SECRET": "s3cret"})
    assert cfg.website.cookie_secret == "s3cret"
    assert cfg.website.paths[0][0] == f"{tmp_path}/prog/w"
    assert cfg.raw["x"] == str(tmp_path)


def test_ahserver_s_home_marker_and_a_port_written_as_text(tmp_path):
    # appPublic's getConfig offered $[home]$; ahserver ran int(port) on website.port.
    write_config(tmp_path, {"website": {"port": "9348", "paths": [["w", ""]]},
                            "filesroot": "$[home]$/files"})
    cfg = load_config(tmp_path)
    assert cfg.website.port == 9348
    assert cfg.raw["filesroot"] == f"{Path.home()}/files"
    write_config(tmp_path, {"website": {"port": "80a", "paths": [["w", ""]]}})
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert any(p.startswith("website.port") for p in info.value.problems)


@pytest.mark.parametrize(
    "value, message",
    [
        ("$[ENV:MISSING_VAR]$", "environment variable MISSING_VAR is not set"),
        ("$[__import__('os').system('id')]$", "malformed substitution"),
        ("$[os.system]$", "malformed substitution"),
        ("$[secret]$", "unknown substitution $[secret]$"),
    ],
)
def test_hostile_or_unknown_substitutions_are_never_evaluated(tmp_path, value, message):
    write_config(tmp_path, {"website": {"cookie_secret": value, "paths": [["w", ""]]}})
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, environ={})
    assert any(message in p for p in info.value.problems)
    assert info.value.problems[0].startswith("website.cookie_secret")


def test_semantic_checks(tmp_path):
    write_config(
        tmp_path,
        {"website": {"port": 70000, "paths": [["x", "nope"]], "processors": [["dspy", "dspy"]]}},
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    text = "\n".join(info.value.problems)
    assert "website.port: 70000 is not a TCP port" in text
    assert "website.paths[0][1]" in text
    assert "website.processors[0][0]" in text
