"""``ahcore check`` catches what a newcomer breaks, as the newcomer runs it.

Every test drives the command line in a subprocess on a site written to a
temporary folder: broken files are named with their line, bad plugin
settings stop ``ahcore serve`` with the line ``check`` prints, near-miss
config keys are warnings with a suggestion, and a missing content root
fails both commands the same way.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ahcore.testing import write_site

SECRET = "s" * 40


def ahcore(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ahcore", *args], capture_output=True, text=True, timeout=timeout
    )


def needs(*modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lines(out: str, kind: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(f"{kind}: ")]


def test_check_names_each_broken_file_with_its_line_and_exits_1(tmp_path: Path) -> None:
    needs("ahcore_dspy", "ahcore_tmpl", "ahcore_sqlds", "ahcore_xlsxds")
    site = write_site(
        tmp_path / "site",
        {
            "website": {"cookie_secret": SECRET},
            "databases": {"main": {"driver": "sqlite", "dbname": "main.db"}},
            "plugins": {"dspy": True, "tmpl": True, "sqlds": True, "xlsxds": True},
        },
        {
            "wwwroot/ok.dspy": "return {'ok': 1}\n",
            "wwwroot/bad.dspy": "x = 1\n\nreturn (\n",
            "wwwroot/ok.tmpl": "{% if x %}yes{% endif %}\n",
            "wwwroot/bad.tmpl": "<p>hello</p>\n{% if x %}\nno end\n",
            # A partial is no page, but it is compiled: its includer would fail.
            "wwwroot/_layout.tmpl": "{{ content }}\n{% for x in y %}\n",
            "wwwroot/ok.sqlds": json.dumps({"sqldesc": {"sql_string": "select 1", "db": "main"}}),
            "wwwroot/bad.sqlds": '{"sqldesc": {"sql_string": "select 1", "db": "main"},\n "x": ,}',
            "wwwroot/nodb.sqlds": json.dumps({"sqldesc": {"sql_string": "select 1", "db": "mian"}}),
            "wwwroot/bad.xlsxds": '{\n  "xlsxfile": \n}',
        },
    )
    out = ahcore("check", "-w", str(site))
    assert out.returncode == 1, out.stdout
    assert out.stderr == ""  # no stray log lines: what a load logs, check reports
    errors = lines(out.stdout, "error")
    assert errors == [
        "error: wwwroot/_layout.tmpl, line 2: template does not compile: Unexpected end of "
        "template. Jinja was looking for the following tags: 'endfor' or 'else'. The "
        "innermost block that needs to be closed is 'for'; fix it (until then the page "
        "answers 500)",
        "error: wwwroot/bad.dspy, line 3: does not compile: '(' was never closed; fix it "
        "(until then the page answers 500)",
        "error: wwwroot/bad.sqlds, line 2: not valid JSON (invalid character) at column 7",
        "error: wwwroot/bad.tmpl, line 2: template does not compile: Unexpected end of "
        "template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. "
        "The innermost block that needs to be closed is 'if'; fix it (until then the page "
        "answers 500)",
        "error: wwwroot/bad.xlsxds, line 3: not valid JSON (Expecting value) at column 1",
        "error: wwwroot/nodb.sqlds: sqldesc.db: 'mian' is not in databases (configured: "
        "main); add it to databases in conf/config.json or correct the name (until then its "
        "requests fail)",
    ], out.stdout
    assert out.stdout.splitlines()[-1] == f"6 problem(s) found in {site}"


def test_a_site_without_problems_is_ok(tmp_path: Path) -> None:
    needs("ahcore_dspy", "ahcore_tmpl", "ahcore_md")
    site = write_site(
        tmp_path / "site",
        {
            "website": {"cookie_secret": SECRET, "port": 8080},
            "plugins": {"dspy": {"time_limit": 5}, "tmpl": True, "md": {"template": "/_page.tmpl"}},
            "shop": {"currency": "EUR"},  # a site's own settings: no warning
        },
        {
            "wwwroot/index.dspy": "return 'hi'\n",
            "wwwroot/_page.tmpl": "<main>{{ params_kw.content }}</main>\n",
            "wwwroot/doc.md": "# Doc\n",
        },
    )
    out = ahcore("check", "-w", str(site))
    assert (out.returncode, out.stdout) == (0, f"{site}: OK\n")


#: plugin settings, files → the line both ``check`` and ``serve`` give.
BAD_SETTINGS = {
    "dspy": (
        {"dspy": {"time_limit": -1}},
        {"wwwroot/page.dspy": "return 1\n"},
        "plugins.dspy.time_limit: expected a positive number of seconds, got -1; write e.g. "
        "30, or leave it out (default 30)",
    ),
    "md": (
        {"md": {"template": "/nope.tmpl"}, "tmpl": True},
        {"wwwroot/page.md": "# Page\n"},
        'plugins.md.template: "/nope.tmpl" names no file in the content roots, so every '
        "markdown page answers 404; create it, correct the URL, or leave the setting out",
    ),
}


@pytest.mark.parametrize("case", BAD_SETTINGS, ids=list(BAD_SETTINGS))
def test_a_bad_setting_is_a_check_error_and_stops_serve_with_the_same_line(
    tmp_path: Path, case: str
) -> None:
    needs(f"ahcore_{case}", "ahcore_tmpl")
    plugins, files, problem = BAD_SETTINGS[case]
    site = write_site(
        tmp_path / "site", {"website": {"cookie_secret": SECRET}, "plugins": plugins}, files
    )
    check = ahcore("check", "-w", str(site))
    assert check.returncode == 1
    assert lines(check.stdout, "error") == [f"error: {problem}"], check.stdout

    serve = ahcore("serve", "-w", str(site), "-p", str(free_port()))
    assert serve.returncode == 2
    assert serve.stderr == f"ahcore: cannot start: {problem}\n"


def test_check_validates_every_plugins_settings(tmp_path: Path) -> None:
    needs(
        "ahcore_sqlds", "ahcore_xlsxds", "ahcore_ws", "ahcore_proxy", "ahcore_rbac", "ahcore_mysql"
    )
    site = write_site(
        tmp_path / "site",
        {
            "website": {"cookie_secret": SECRET},
            "databases": {
                "shop": {"driver": "aiomysql", "kwargs": {"host": "db", "port": "http", "hots": "x"}}
            },
            "plugins": {
                "sqlds": {"row_cap": 0},
                "xlsxds": {"max_rows": "5"},
                "ws": {"heartbeat": "often"},
                "proxy": {"allow_hosts": ["https://api.example.com/v1"]},
                "rbac": {"cache_ttl": -1},
            },
        },
    )
    out = ahcore("check", "-w", str(site))
    assert out.returncode == 1
    errors = lines(out.stdout, "error")
    for expected in (
        "error: plugins.sqlds.row_cap must be a positive integer",
        "error: plugins.xlsxds.max_rows: expected a positive whole number of rows, got '5'; "
        "write e.g. 1000, or leave it out (default 1000)",
        "error: plugins.ws.heartbeat: expected seconds (0 or null: no pings), got 'often'",
        "error: plugins.proxy.allow_hosts: 'https://api.example.com/v1' is not \"host\", "
        '"host:port" or "host:*" (no scheme, path or wildcard in the name)',
        "error: plugins.rbac.cache_ttl must be a number of seconds >= 0",
        "error: databases.shop.kwargs.port: expected a TCP port (1 to 65535), got 'http'",
    ):
        assert expected in errors, out.stdout
    assert len(errors) == 6, out.stdout
    assert (
        'warning: databases.shop.kwargs.hots: not a mysql connection setting, ignored; did '
        'you mean "host"? (known: host, port, user, password, db, unix_socket, charset, '
        "dbname, database)"
    ) in lines(out.stdout, "warning")


def test_near_miss_keys_are_warnings_with_a_suggestion(tmp_path: Path) -> None:
    site = write_site(
        tmp_path / "site",
        {
            # No "port" and no "cookie_secret": a near miss beside the real key is a
            # site's own setting.
            "website": {"prot": 9000, "cokie_secret": SECRET},
            "plugin": {"dspy": True},
            "shop": {"currency": "EUR"},
        },
    )
    out = ahcore("check", "-w", str(site))
    assert out.returncode == 0, out.stdout  # unknown keys stay allowed
    assert lines(out.stdout, "warning")[:3] == [
        'warning: website.prot: unknown key, ignored by ahcore; did you mean "port"? '
        "(rename it, or keep it if it is your own setting)",
        'warning: website.cokie_secret: unknown key, ignored by ahcore; did you mean '
        '"cookie_secret"? (rename it, or keep it if it is your own setting)',
        'warning: plugin: unknown key, ignored by ahcore; did you mean "plugins"? (rename '
        "it, or keep it if it is your own setting)",
    ]


def test_a_misspelt_plugin_name_suggests_the_installed_one(tmp_path: Path) -> None:
    needs("ahcore_tmpl")
    site = write_site(
        tmp_path / "site", {"website": {"cookie_secret": SECRET}, "plugins": {"tmlp": True}}
    )
    problem = (
        "plugins.tmlp: no plugin 'tmlp' is installed; did you mean \"tmpl\"? Rename the key "
        'to "tmpl", or remove "tmlp" from the plugins section'
    )
    check = ahcore("check", "-w", str(site))
    assert check.returncode == 1
    assert lines(check.stdout, "error") == [f"error: {problem}"]
    assert "ahcore-tmlp" not in check.stdout
    serve = ahcore("serve", "-w", str(site), "-p", str(free_port()))
    assert (serve.returncode, serve.stderr) == (2, f"ahcore: cannot start: {problem}\n")


def test_a_plugin_value_of_the_wrong_type_names_its_json_type(tmp_path: Path) -> None:
    site = write_site(
        tmp_path / "site",
        {"website": {"cookie_secret": SECRET, "port": "eighty"}, "plugins": {"dspy": "yes"}},
    )
    out = ahcore("check", "-w", str(site))
    assert out.returncode == 1
    assert lines(out.stdout, "error") == [
        "error: website.port: expected integer, got string",
        "error: plugins.dspy: expected boolean or object, got string",
    ]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_missing_content_root_fails_check_and_serve_alike(tmp_path: Path, workers: str) -> None:
    site = tmp_path / "site"
    (site / "conf").mkdir(parents=True)
    (site / "conf" / "config.json").write_text(
        json.dumps({"website": {"paths": [["$[workdir]$/wwwroot", ""]], "cookie_secret": SECRET}})
    )
    problem = (
        f"website.paths[0]: the content root {site}/wwwroot does not exist; create it or "
        "correct the path"
    )
    check = ahcore("check", "-w", str(site))
    assert check.returncode == 1
    assert lines(check.stdout, "error") == [f"error: {problem}"]
    serve = ahcore("serve", "-w", str(site), "-p", str(free_port()), "--workers", workers)
    assert (serve.returncode, serve.stderr, serve.stdout) == (
        2,
        f"ahcore: cannot start: {problem}\n",
        "",
    )


def test_check_names_broken_ws_proxy_bricks_and_markdown_files(tmp_path: Path) -> None:
    needs("ahcore_ws", "ahcore_proxy", "ahcore_bui", "ahcore_md", "ahcore_tmpl")
    site = write_site(
        tmp_path / "site",
        {
            "website": {"cookie_secret": SECRET},
            "plugins": {
                "ws": True,
                "proxy": {"allow_hosts": ["api.example.com"]},
                "bui": True,
                "tmpl": True,
                "md": {"template": "_page.tmpl"},  # relative: from each page's folder
            },
        },
        {
            "wwwroot/chat.ws": "if True:\nreturn 1\n",
            "wwwroot/api.proxy": "{% for h in x %}\n",
            "wwwroot/page.ui": '{"widgettype": "Text"}\n',
            "wwwroot/_page.tmpl": "{{ params_kw.content }}\n",
            "wwwroot/doc.md": "# fine: _page.tmpl is beside it\n",
            "wwwroot/guide/intro.md": "# no guide/_page.tmpl\n",
        },
    )
    out = ahcore("check", "-w", str(site))
    assert out.returncode == 1
    assert lines(out.stdout, "error") == [
        "error: wwwroot/api.proxy, line 1: proxy file does not compile: Unexpected end of "
        "template. Jinja was looking for the following tags: 'endfor' or 'else'. The "
        "innermost block that needs to be closed is 'for'; fix it (until then its requests "
        "fail)",
        "error: wwwroot/chat.ws, line 2: does not compile: expected an indented block after "
        "'if' statement on line 1; fix it (until then it cannot be used)",
        'error: wwwroot/guide/intro.md: plugins.md.template: "_page.tmpl" names no file in '
        "the content roots (from /guide/intro.md), so every markdown page answers 404; "
        "create it, correct the URL, or leave the setting out",
        "error: wwwroot/page.ui: the layout /bricks/header.tmpl that wraps this page cannot "
        "be used: it does not exist in any content root (website.paths); until it can, the "
        "page answers 500",
        "error: wwwroot/page.ui: the layout /bricks/footer.tmpl that wraps this page cannot "
        "be used: it does not exist in any content root (website.paths); until it can, the "
        "page answers 500",
    ], out.stdout
