"""ahcore.server's parts called directly: the serve flags, start-up lines, watching, page reload."""

from __future__ import annotations

import argparse
import errno
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ahcore.appkeys import SITE_KEY
from ahcore.config import SiteConfig, load_config
from ahcore.hotreload import FileWatcher
from ahcore.server import livereload
from ahcore.server.options import (
    add_serve_arguments,
    check_serve_args,
    host_address,
    options_from_args,
    port_number,
    seconds,
    serve_options,
    site_folder,
    without_dev,
    worker_count,
)
from ahcore.server.startup import (
    StartupError,
    bind_problem,
    cannot_start,
    hook_problem,
    probe_port,
    ssl_context,
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    check_serve_args(parser, args)
    return args


def test_the_flags_make_typed_options(tmp_path: Path) -> None:
    opts = options_from_args(parse("-w", str(tmp_path), "-p", "8081", "--workers", "3", "--dev"))
    assert (opts.workdir, opts.port, opts.workers, opts.dev, opts.livereload) == (
        tmp_path.resolve(), 8081, 3, True, False,
    )
    assert opts.shutdown_timeout == 30.0 and opts.host is None


@pytest.mark.parametrize(
    "argv",
    [["-p", "65536"], ["-p", "-1"], ["-p", "x"], ["--workers", "0"], ["--workers", "1.5"],
     ["--host", "no-such-host.invalid"], ["--shutdown-timeout", "nan"], ["-w", "/no/such/folder"]],
)
def test_values_that_cannot_work_are_refused(argv: list[str]) -> None:
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        parse(*argv)


def test_port_zero_is_a_free_port_for_one_worker_only(tmp_path: Path) -> None:
    assert parse("-w", str(tmp_path), "-p", "0").port == 0
    with pytest.raises(SystemExit):
        parse("-w", str(tmp_path), "-p", "0", "--workers", "2")


def test_an_ip_address_is_taken_as_it_is(tmp_path: Path) -> None:
    assert parse("-w", str(tmp_path), "--host", "::1").host == "::1"


def test_the_dev_parent_runs_the_same_command_with_livereload() -> None:
    assert without_dev(["serve", "--dev", "-p", "1"]) == ["serve", "-p", "1", "--livereload"]


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (OSError(errno.EADDRINUSE, "in use"), "port 80 is in use: stop the other server or pass -p"),
        (OSError(errno.EACCES, "denied"), "no permission to listen on h:80: ports below 1024"),
        (OSError(errno.EADDRNOTAVAIL, "x"), "cannot listen on h: it is not an address of this machine"),
        (socket.gaierror(-2, "Name or service not known"), "cannot listen on 'h': no such address"),
        (OverflowError("bind(): port must be 0-65535."), "port 80 is out of range: use a port from 1"),
        (OSError(errno.ENOBUFS, "No buffer space available"), "cannot listen on h:80: No buffer space"),
    ],
)
def test_each_bind_failure_says_what_to_do(exc: BaseException, line: str) -> None:
    assert bind_problem(exc, "h", 80).startswith(line)


def test_a_held_port_fails_the_probe_and_a_free_one_passes() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(StartupError) as info:
            probe_port("127.0.0.1", port)
    assert info.value.problems == [f"port {port} is in use: stop the other server or pass -p"]
    probe_port("127.0.0.1", port)  # released: free again


def test_one_problem_is_one_line_and_several_a_list() -> None:
    assert cannot_start(["a"]) == "ahcore: cannot start: a"
    assert cannot_start(["a", "b"]) == "ahcore: cannot start:\n  - a\n  - b"


def test_the_file_watcher_names_changed_new_and_removed_files(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("1")
    (tmp_path / "b.txt").write_text("1")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.py").write_text("1")
    watcher = FileWatcher(files=[tmp_path / "conf.json"], trees=[tmp_path], suffixes=(".py",))
    assert watcher.changed() == []
    time.sleep(0.01)
    (tmp_path / "a.py").write_text("22")
    (tmp_path / "b.txt").write_text("22")  # not a .py file
    (tmp_path / ".hidden" / "c.py").write_text("22")  # hidden folder
    (tmp_path / "conf.json").write_text("{}")
    (tmp_path / "new.py").write_text("")
    assert watcher.changed() == sorted(str(tmp_path / n) for n in ("a.py", "conf.json", "new.py"))
    (tmp_path / "new.py").unlink()
    assert watcher.changed() == [str(tmp_path / "new.py")]


def test_the_reload_tag_goes_before_the_end_of_the_body(make_request) -> None:  # type: ignore[no-untyped-def]
    request = make_request("GET", "/")
    page = web.Response(text="<html><BODY>x</BODY></html>", content_type="text/html")
    out = livereload.with_script(request, page)
    assert isinstance(out, web.Response)
    assert out.body == b"<html><BODY>x" + livereload.TAG + b"</BODY></html>"


@pytest.mark.parametrize(
    "response",
    [
        web.Response(text="{}", content_type="application/json"),
        web.Response(text="<p>gone</p>", content_type="text/html", status=404),
        web.Response(body=b"\x1f\x8b", content_type="text/html", headers={"Content-Encoding": "gzip"}),
    ],
)
def test_other_answers_are_left_alone(make_request, response: web.Response) -> None:  # type: ignore[no-untyped-def]
    body = response.body
    assert livereload.with_script(make_request("GET", "/"), response).body == body  # type: ignore[attr-defined]


def test_a_plugin_parses_the_serve_flags_through_the_api(tmp_path: Path) -> None:
    from ahcore.api import serve_options

    opts = serve_options(["-w", str(tmp_path), "-p", "8081"])
    assert (opts.workdir, opts.port, opts.workers) == (tmp_path.resolve(), 8081, 1)
    with pytest.raises(SystemExit) as info:
        serve_options(["-w", str(tmp_path), "-p", "70000"])
    assert info.value.code == 2


# ---------------------------------------------------------------- each flag's message


@pytest.mark.parametrize(
    ("check", "text", "message"),
    [
        (port_number, "x", "'x' is not a port number (1 to 65535)"),
        (port_number, "65536", "port 65536 is out of range: use 1 to 65535"),
        (port_number, "-1", "port -1 is out of range: use 1 to 65535"),
        (worker_count, "two", "'two' is not a number of workers"),
        (worker_count, "0", "0 workers cannot serve: use 1 or more"),
        (host_address, "no-such-host.invalid", "'no-such-host.invalid' is neither an IP address nor a host name that resolves"),
        (host_address, "a" * 300, "is neither an IP address nor a host name that resolves"),
        (seconds, "soon", "'soon' is not a number of seconds"),
        (seconds, "-1", "-1 seconds: use 0 or more"),
        (seconds, "nan", "nan seconds: use 0 or more"),
        (site_folder, "/no/such/folder", "/no/such/folder is not a folder; write a starter site there with: ahcore init /no/such/folder"),
    ],
)
def test_each_bad_flag_value_says_what_was_wrong(check: Any, text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        check(text)
    assert message in str(info.value)


def test_good_flag_values_come_back_typed(tmp_path: Path) -> None:
    assert (port_number("0"), port_number("65535"), worker_count("4")) == (0, 65535, 4)
    assert (seconds("0"), seconds("2.5"), host_address("127.0.0.1"), host_address("localhost")) == (
        0.0, 2.5, "127.0.0.1", "localhost",
    )
    assert site_folder(str(tmp_path)) == str(tmp_path)


def test_a_bad_flag_is_one_argparse_line_and_status_2(tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        serve_options(["-w", str(tmp_path), "--workers", "0"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith("argument --workers: 0 workers cannot serve: use 1 or more")
    with pytest.raises(SystemExit):
        serve_options(["-w", str(tmp_path), "-p", "0", "--workers", "2"])
    assert "-p 0 (any free port) would give each worker a port of its own" in capsys.readouterr().err


def test_embedding_adds_its_own_fields(tmp_path: Path) -> None:
    opts = serve_options(["-w", str(tmp_path)], plugin_modules={"j": "json"}, command=("x",))
    assert opts.command == ("x",) and opts.extra_plugins() == {"j": __import__("json")}
    assert without_dev(["serve", "-w", "."]) == ["serve", "-w", ".", "--livereload"]


# ---------------------------------------------------------------- start-up lines


@pytest.mark.parametrize(
    ("exc", "host", "line"),
    [
        (OSError(errno.EADDRINUSE, "in use"), None, "port 80 is in use: stop the other server or pass -p"),
        (OSError(errno.EACCES, "denied"), None,
         "no permission to listen on port 80: ports below 1024 need root or CAP_NET_BIND_SERVICE; "
         "pass -p with a port from 1024 up, or serve behind a proxy"),
        (OSError(errno.EACCES, "denied"), "10.0.0.1",
         "no permission to listen on 10.0.0.1:80: ports below 1024 need root or CAP_NET_BIND_SERVICE; "
         "pass -p with a port from 1024 up, or serve behind a proxy"),
        (OSError(errno.EADDRNOTAVAIL, "x"), "10.9.9.9",
         "cannot listen on 10.9.9.9: it is not an address of this machine; pass --host with one of "
         "its addresses (0.0.0.0 for all)"),
        (socket.gaierror(-2, "Name or service not known"), "nohost",
         "cannot listen on 'nohost': no such address or host name; pass --host with an address of "
         "this machine (0.0.0.0 for all)"),
        (OverflowError("bind(): port must be 0-65535."), None,
         "port 80 is out of range: use a port from 1 to 65535 (-p or website.port)"),
        (OSError(errno.ENOBUFS, "No buffer space available"), None,
         "cannot listen on port 80: No buffer space available"),
        (RuntimeError("odd"), "h", "cannot listen on h:80: odd"),
    ],
)
def test_bind_problem_lines_in_full(exc: BaseException, host: str | None, line: str) -> None:
    assert bind_problem(exc, host, 80) == line


def test_probe_port_out_of_range_is_a_sentence() -> None:
    with pytest.raises(StartupError) as info:
        probe_port("127.0.0.1", 70000)
    assert info.value.problems == [
        "port 70000 is out of range: use a port from 1 to 65535 (-p or website.port)"
    ]


def test_startup_error_holds_its_problems() -> None:
    assert StartupError("one").problems == ["one"]
    err = StartupError(["a", "b"])
    assert err.problems == ["a", "b"] and str(err) == "a; b"
    assert cannot_start(["x"], head="webapp") == "webapp: x"


def test_hook_problem_names_the_error_not_a_traceback() -> None:
    assert hook_problem(KeyError("db")) == (
        "start-up failed: KeyError: 'db' (serve with --debug to see the traceback)"
    )


def _self_signed(folder: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    crt, keyfile = folder / "site.pem", folder / "site.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return crt, keyfile


def _config(make_site: Any, ssl: dict[str, str] | None) -> SiteConfig:
    website: dict[str, Any] = {"paths": [["$[workdir]$/wwwroot", ""]]}
    if ssl is not None:
        website["ssl"] = ssl
    return load_config(make_site(config={"website": website}))


def test_ssl_context_loads_a_pem_pair_or_says_what_is_wrong(make_site: Any, tmp_path: Path) -> None:
    assert ssl_context(_config(make_site, None)) is None
    crt, key = _self_signed(tmp_path)
    ctx = ssl_context(_config(make_site, {"crtfile": str(crt), "keyfile": str(key)}))
    assert ctx is not None and ctx.get_ca_certs() == []  # a server context
    missing = str(tmp_path / "nope.key")
    with pytest.raises(StartupError) as info:
        ssl_context(_config(make_site, {"crtfile": str(crt), "keyfile": missing}))
    assert info.value.problems == [
        f"website.ssl.keyfile {missing} does not exist: correct the path in conf/config.json "
        "or create the file"
    ]
    with pytest.raises(StartupError) as info:
        ssl_context(_config(make_site, {"crtfile": str(key), "keyfile": str(crt)}))  # swapped
    (line,) = info.value.problems
    assert line.startswith(f"website.ssl: the certificate {key} and key {crt} do not load (")
    assert line.endswith("crtfile must be a PEM certificate (chain) and keyfile its private key")


# ---------------------------------------------------------------- page reload


def test_the_tag_goes_at_the_end_without_a_body_and_before_the_last_one(make_request: Any) -> None:
    request = make_request("GET", "/")
    bare = livereload.with_script(request, web.Response(text="<p>x", content_type="text/html"))
    assert bare.body == b"<p>x" + livereload.TAG  # type: ignore[attr-defined]
    two = web.Response(text="<pre></body></pre></body>", content_type="text/html")
    assert livereload.with_script(request, two).body == (  # type: ignore[attr-defined]
        b"<pre></body></pre>" + livereload.TAG + b"</body>"
    )


async def test_the_middleware_serves_the_script_and_tags_static_html(
    make_app: Any, make_request: Any
) -> None:
    app = make_app(
        {"website": {"paths": [["$[workdir]$/wwwroot", ""]]}},
        {"wwwroot/page.html": "<body>hi</body>", "wwwroot/data.txt": "<body>not html</body>"},
    )
    reload = livereload.install_livereload(app)
    assert app.middlewares[0] == reload.middleware
    script = await reload.middleware(make_request("GET", livereload.SCRIPT_URL, app=app), _never)
    assert isinstance(script, web.Response) and script.content_type == "text/javascript"
    assert script.headers["Cache-Control"] == "no-store"
    assert f'new EventSource("{livereload.EVENTS}")' in script.text  # type: ignore[operator]

    async def static(request: web.Request) -> web.StreamResponse:
        resolved = request.app[SITE_KEY].resolve(request.path)
        return web.FileResponse(resolved.path)

    page = await reload.middleware(make_request("GET", "/page.html", app=app), static)
    assert isinstance(page, web.Response)
    assert page.body == b"<body>hi" + livereload.TAG + b"</body>"
    text = await reload.middleware(make_request("GET", "/data.txt", app=app), static)
    assert isinstance(text, web.FileResponse)  # not HTML: sent as the file


async def _never(request: web.Request) -> web.StreamResponse:
    raise AssertionError("the handler is not called for the reload endpoints")
