"""Hostile or ill-typed config values are refused at start-up; nothing is evaluated."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ahcore.app import create_app
from ahcore.config import ConfigError, load_config
from ahcore.plugins import PluginError

MARK = "PWNED-MARKER"

# Not of the substitution grammar (``$[name]$``, ``$[ENV:NAME]$``): never evaluated.
INJECTIONS = [
    f"$[__import__('os').system('touch {MARK}')]$",
    f"$[__import__('pathlib').Path('{MARK}').touch()]$",
    "$[workdir.__class__]$",
    "$[ENV:HOME; touch PWNED-MARKER]$",
    "$[{{7*7}}]$",
    f"$[exec(\"open('{MARK}','w')\")]$",
]


def write(root, cfg) -> None:
    (root / "conf").mkdir(parents=True, exist_ok=True)
    (root / "wwwroot").mkdir(exist_ok=True)
    (root / "conf" / "config.json").write_text(json.dumps(cfg))


def strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from strings(v)


def hostile_config(where: str, value: str) -> dict:
    cfg: dict = {"website": {"paths": [["$[workdir]$/wwwroot", ""]]}}
    if where == "paths":
        cfg["website"]["paths"] = [[value, ""]]
    elif where == "cookie_secret":
        cfg["website"]["cookie_secret"] = value
    elif where == "filesroot":
        cfg["filesroot"] = value
    else:
        cfg["databases"] = {"main": {"driver": "sqlite", "kwargs": {"dbname": value}}}
    return cfg


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize("where", ["paths", "cookie_secret", "filesroot", "db"])
def test_expression_substitutions_are_never_evaluated(tmp_path, monkeypatch, value, where):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, hostile_config(where, value))
    try:
        cfg = load_config(tmp_path)
    except ConfigError:
        pass
    else:
        # Kept as literal text, character for character.
        assert value in set(strings(cfg.raw))
    assert not any(MARK in p.name for p in tmp_path.rglob("*"))
    assert not os.path.exists(MARK)


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize("where", ["cookie_secret", "db"])
def test_malformed_substitutions_are_refused_at_start_up(tmp_path, monkeypatch, value, where):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, hostile_config(where, value))
    with pytest.raises((ConfigError, PluginError)):
        create_app(tmp_path)


@pytest.mark.parametrize(
    "value", ["$[nope]$", "$[ProgramPath]$/../$[__class__]$", "$[ENV:AHCORE_NO_SUCH_VAR_X]$"]
)
def test_unknown_substitutions_are_refused(tmp_path, value):
    write(tmp_path, hostile_config("cookie_secret", value))
    with pytest.raises(ConfigError) as info:
        create_app(tmp_path)
    assert "unknown substitution" in str(info.value) or "not set" in str(info.value)


WRONG_TYPES = [
    {"website": {"paths": "not-a-list"}},
    {"website": {"paths": [["$[workdir]$/wwwroot", ""]], "port": "eighty"}},
    {"website": {"paths": [["$[workdir]$/wwwroot", ""]], "client_max_size": -1}},
    {"website": {"paths": [["$[workdir]$/wwwroot", ""]], "client_max_size": "10MB"}},
    {"website": {"paths": [["$[workdir]$/wwwroot", ""]], "session_max_time": "1h"}},
    {"website": {"paths": [["$[workdir]$/wwwroot", ""]], "cookie_secret": 12345}},
    {"website": {"paths": [["$[workdir]$/wwwroot", ""]], "trusted_proxies": "0.0.0.0/0"}},
    {"website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": {".dspy": "dspy"}}},
    {"website": [], "plugins": {}},
    {"website": {"paths": [["$[workdir]$/wwwroot", ""]]}, "plugins": "dspy"},
    {
        "website": {"paths": [["$[workdir]$/wwwroot", ""]]},
        "plugins": {"dspy": {"time_limit": "30s"}},
    },
    {"website": {"paths": [["$[workdir]$/wwwroot", ""]]}, "plugins": {"dspy": {"time_limit": -1}}},
    {"website": {"paths": [["$[workdir]$/wwwroot", ""]]}, "plugins": {"no_such_plugin_xyz": True}},
]


@pytest.mark.parametrize("cfg", WRONG_TYPES, ids=lambda c: json.dumps(c)[:60])
async def test_wrong_types_are_refused_at_start_up(tmp_path, aiohttp_client, cfg):
    write(tmp_path, cfg)
    try:
        app = create_app(tmp_path)
    except (ConfigError, PluginError) as exc:
        assert str(exc)
        return
    # Some plugin settings are checked when the site starts (on_startup).
    with pytest.raises((ConfigError, PluginError, ValueError, TypeError)):
        await aiohttp_client(app)


def test_config_that_is_not_json_is_refused(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.json").write_text("{'website': __import__('os')}")
    with pytest.raises(ConfigError):
        create_app(tmp_path)


def test_serve_refuses_a_hostile_config_and_runs_nothing(tmp_path):
    write(tmp_path, {"website": {"paths": [[INJECTIONS[0], ""]], "port": 0}})
    out = subprocess.run(
        [sys.executable, "-m", "ahcore", "check", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert out.returncode != 0
    assert "malformed substitution" in out.stdout + out.stderr  # refused, never evaluated
    assert "Traceback" not in out.stdout + out.stderr
    assert not any(MARK in p.name for p in tmp_path.rglob("*"))


# ------------------------------------------------------------------ weak secrets

GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def secret_site(root, secret) -> None:
    write(root, {"website": {"paths": [["$[workdir]$/wwwroot", ""]], "cookie_secret": secret}})
    (root / "wwwroot" / "a.txt").write_text("a")


@pytest.mark.parametrize("secret", ["s", "changeme", "x" * 31, "é" * 15])
def test_a_short_cookie_secret_stops_start_up_with_how_to_make_one(tmp_path, secret):
    secret_site(tmp_path, secret)
    with pytest.raises(ConfigError) as info:
        create_app(tmp_path)
    message = str(info.value)
    assert "website.cookie_secret is" in message and "at least 32" in message
    assert GENERATE in message
    if len(secret) > 4:
        assert secret not in message  # the secret itself is not echoed


@pytest.mark.parametrize("secret", ["x" * 32, "é" * 16, None, ""])
def test_a_long_or_generated_cookie_secret_starts(tmp_path, secret):
    secret_site(tmp_path, secret)
    create_app(tmp_path)


def test_debug_accepts_a_short_cookie_secret_with_a_warning(tmp_path, caplog):
    secret_site(tmp_path, "short")
    create_app(tmp_path, debug=True)
    assert "accepted because of --debug" in caplog.text


def test_serve_and_check_refuse_a_short_cookie_secret(tmp_path):
    import socket

    secret_site(tmp_path, "short-secret")
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for workers in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-m", "ahcore", "serve", "-w", str(tmp_path), "-p", str(port),
             "--host", "127.0.0.1", "--workers", workers],
            capture_output=True, text=True, timeout=60, env=env,
        )
        assert out.returncode == 2, (workers, out.stdout, out.stderr)
        assert "website.cookie_secret is 12 bytes" in out.stderr and GENERATE in out.stderr
        assert "Traceback" not in out.stderr and "serving" not in out.stdout
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    # `ahcore check` says the same, and goes on listing the other problems.
    cfg = json.loads((tmp_path / "conf" / "config.json").read_text())
    cfg["website"]["paths"].append(["$[workdir]$/missing-root", "/m"])
    (tmp_path / "conf" / "config.json").write_text(json.dumps(cfg))
    out = subprocess.run(
        [sys.executable, "-m", "ahcore", "check", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 1, out.stdout
    assert "error: website.cookie_secret is 12 bytes" in out.stdout and GENERATE in out.stdout
    assert "missing-root" in out.stdout
    # --debug serves it (the root problem put right).
    cfg["website"]["paths"].pop()
    (tmp_path / "conf" / "config.json").write_text(json.dumps(cfg))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ahcore", "serve", "-w", str(tmp_path), "-p", str(port),
         "--host", "127.0.0.1", "--debug"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = proc.stdout.readline()
        assert "serving" in line, (line, proc.poll() is not None and proc.stderr.read())
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert conn.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        proc.terminate()
        proc.wait(30)
