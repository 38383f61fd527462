"""ahcore.server's parts called directly: the serve flags, start-up lines, watching, page reload."""

from __future__ import annotations

import argparse
import errno
import socket
import time
from pathlib import Path

import pytest
from aiohttp import web

from ahcore.hotreload import FileWatcher
from ahcore.server import livereload
from ahcore.server.options import (
    add_serve_arguments,
    check_serve_args,
    options_from_args,
    without_dev,
)
from ahcore.server.startup import StartupError, bind_problem, cannot_start, probe_port


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
