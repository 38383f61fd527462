"""ahcore-dspy against a real in-process server (``make_site`` + ``ahcore_client``).

These tests double as examples of testing a processor plugin: write a site
folder, start it, make requests, read the log with ``caplog``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import ahcore_dspy.compiler
import pytest
from ahcore_dspy.compiler import compile_script
from ahcore_dspy.watchdog import TimeLimitExceeded, Watchdog

from ahcore.api import PluginError, get_site

MakeSite = Callable[..., Path]
Client = Callable[..., Awaitable[Any]]


def config(dspy_settings: Any = True) -> dict[str, Any]:
    return {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""]],
            "processors": [[".dspy", "dspy"]],
        },
        "plugins": {"dspy": dspy_settings},
    }


@pytest.fixture
def start(make_site: MakeSite, ahcore_client: Client) -> Callable[..., Awaitable[Any]]:
    """``client = await start({"wwwroot/a.dspy": "return 1"}, settings)``."""

    async def start_site(files: dict[str, str | bytes], settings: Any = True) -> Any:
        return await ahcore_client(make_site(config=config(settings), files=files))

    return start_site


def rewrite(path: Path, text: str) -> None:
    """Write ``text`` and move the mtime on, so even a coarse clock sees a change."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


# ---------------------------------------------------------------- return conventions

RETURNS = {
    "wwwroot/dict.dspy": "return {'a': 1, 'when': datetime.date(2024, 1, 2)}",
    "wwwroot/list.dspy": "return [1, 'two', None]",
    "wwwroot/html.dspy": "return '<p>hello</p>'",
    "wwwroot/jsontext.dspy": "return '  {\"x\": [1, 2]}  '",
    "wwwroot/bytes.dspy": "return b'\\x00\\x01raw'",
    "wwwroot/none.dspy": "x = 1",
    "wwwroot/response.dspy": (
        "from aiohttp import web\n"
        "return web.Response(text='made by hand', status=201, content_type='text/plain')\n"
    ),
    "wwwroot/stream.dspy": (
        "return await stream_response(request, ['a', 'b'], content_type='text/plain')\n"
    ),
}


@pytest.mark.parametrize(
    ("url", "status", "content_type", "body"),
    [
        ("/dict.dspy", 200, "application/json; charset=utf-8", b'{"a":1,"when":"2024-01-02"}'),
        ("/list.dspy", 200, "application/json; charset=utf-8", b'[1,"two",null]'),
        ("/html.dspy", 200, "text/html; charset=utf-8", b"<p>hello</p>"),
        ("/jsontext.dspy", 200, "application/json; charset=utf-8", b'  {"x": [1, 2]}  '),
        ("/bytes.dspy", 200, "application/octet-stream", b"\x00\x01raw"),
        ("/none.dspy", 200, None, b""),
        ("/response.dspy", 201, "text/plain; charset=utf-8", b"made by hand"),
        ("/stream.dspy", 200, "text/plain", b"ab"),
    ],
)
async def test_return_conventions(
    start: Any, url: str, status: int, content_type: str | None, body: bytes
) -> None:
    client = await start(RETURNS)
    resp = await client.get(url)
    assert resp.status == status
    if content_type is not None:
        assert resp.headers["Content-Type"] == content_type
    assert await resp.read() == body


async def test_top_level_await_async_with_async_for_and_return(start: Any) -> None:
    script = """\
import contextlib

@contextlib.asynccontextmanager
async def opened(log):
    log.append('open')
    yield 'resource'
    log.append('close')

async def numbers():
    for i in range(3):
        await async_sleep(0)
        yield i

log = []
async with opened(log) as r:
    log.append(r)
total = 0
async for n in numbers():
    total += n
await async_sleep(0)
if params_kw.early:
    return {'early': True}
return {'log': log, 'total': total, 'squares': [await async_sleep(0, i * i) for i in range(3)]}
"""
    client = await start({"wwwroot/s.dspy": script})
    resp = await client.get("/s.dspy")
    assert await resp.json() == {
        "log": ["open", "resource", "close"],
        "total": 3,
        "squares": [0, 1, 4],
    }
    assert await (await client.get("/s.dspy?early=1")).json() == {"early": True}


async def test_script_sees_the_namespace(start: Any) -> None:
    script = "return {'method': request.method, 'url': str(request.rel_url), 'uuid': len(uuid())}"
    client = await start({"wwwroot/ns.dspy": script})
    resp = await client.post("/ns.dspy?a=1")
    assert await resp.json() == {"method": "POST", "url": "/ns.dspy?a=1", "uuid": 21}


async def test_helpers_and_classes_see_script_variables(start: Any) -> None:
    """Script variables are function locals; nested code reaches them as closures."""
    script = (
        "factor = int(params_kw.f or 3)\n"
        "def scale(x):\n"
        "    return x * factor\n"
        "class Box:\n"
        "    size = factor + 1\n"
        "return {'scaled': [scale(i) for i in range(3)], 'box': Box.size}\n"
    )
    client = await start({"wwwroot/h.dspy": script})
    assert await (await client.get("/h.dspy?f=2")).json() == {"scaled": [0, 2, 4], "box": 3}


async def test_class_bodies_eval_and_exec_see_the_namespace(start: Any) -> None:
    """ahserver ran a script with exec(), so a class body or eval() reached every name."""
    script = (
        "class Handler:\n"
        "    make_id = uuid\n"
        "    kind = type(params_kw).__name__\n"
        "exec('global sent\\nsent = params_kw.a')\n"
        "return {'cls': callable(Handler.make_id), 'kind': Handler.kind,\n"
        "        'eval': eval('callable(uuid) and request.method'), 'exec': sent}\n"
    )
    client = await start({"wwwroot/k.dspy": script})
    assert await (await client.get("/k.dspy?a=x")).json() == {
        "cls": True, "kind": "DictObject", "eval": "GET", "exec": "x"
    }


# ---------------------------------------------------------------- compile once, reload on change


@pytest.fixture
def compilations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The file names compiled during a test, in order."""
    compiled: list[str] = []
    real = ahcore_dspy.compiler.compile_script

    def counting(source: str, filename: str) -> Any:
        compiled.append(filename)
        return real(source, filename)

    monkeypatch.setattr(ahcore_dspy.compiler, "compile_script", counting)
    return compiled


async def test_compiled_once_while_unchanged_and_again_after_a_change(
    start: Any, compilations: list[str]
) -> None:
    compiled = compilations
    client = await start({"wwwroot/v.dspy": "return 'one'"})

    for _ in range(5):
        assert await (await client.get("/v.dspy")).text() == "one"
    assert len(compiled) == 1
    script = Path(compiled[0])
    assert script.name == "v.dspy"

    rewrite(script, "return 'two, a longer answer'")
    assert await (await client.get("/v.dspy")).text() == "two, a longer answer"
    assert await (await client.get("/v.dspy")).text() == "two, a longer answer"
    assert len(compiled) == 2


async def test_concurrent_first_requests_compile_once(start: Any, compilations: list[str]) -> None:
    compiled = compilations
    client = await start({"wwwroot/c.dspy": "await async_sleep(0.01)\nreturn 'ok'"})
    answers = await asyncio.gather(*(client.get("/c.dspy") for _ in range(20)))
    assert {r.status for r in answers} == {200}
    assert len(compiled) == 1


# ---------------------------------------------------------------- errors


async def test_exception_logs_file_and_line_and_hides_traceback(
    start: Any, caplog: pytest.LogCaptureFixture
) -> None:
    script = "x = 1\ny = 2\nraise ValueError('secret detail')\n"
    client = await start({"wwwroot/boom.dspy": script})
    with caplog.at_level(logging.ERROR, logger="ahcore.errors"):
        resp = await client.get("/boom.dspy")
    body = await resp.text()
    assert resp.status == 500
    assert "Traceback" not in body and "secret detail" not in body and "boom.dspy" not in body
    error_id = resp.headers["X-Error-Id"]
    assert error_id in body

    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "ahcore.errors")
    assert error_id in logged
    assert 'boom.dspy", line 3, in __dspy_main__' in logged
    assert "ValueError: secret detail" in logged


async def test_traceback_line_numbers_are_the_files_own_after_strings_and_comments(
    start: Any, caplog: pytest.LogCaptureFixture
) -> None:
    script = '# a comment\n\ntext = """\nline\n\tline\n"""\n\n1 / 0\n'
    client = await start({"wwwroot/div.dspy": script})
    with caplog.at_level(logging.ERROR, logger="ahcore.errors"):
        assert (await client.get("/div.dspy")).status == 500
    assert 'div.dspy", line 8, in __dspy_main__' in caplog.text


async def test_syntax_error_is_500_without_source_and_logged_with_line(
    start: Any, caplog: pytest.LogCaptureFixture
) -> None:
    script = "x = 1\nsecret_token = 'abc'\nif x\n    return 1\n"
    client = await start({"wwwroot/bad.dspy": script})
    with caplog.at_level(logging.ERROR):
        resp = await client.get("/bad.dspy")
        again = await client.get("/bad.dspy")
    body = await resp.text()
    assert resp.status == 500 and again.status == 500
    assert "secret_token" not in body and "if x" not in body and "line" not in body
    # Logged once when compiled, and with the error id on each request.
    compile_logs = [r for r in caplog.records if r.name == "ahcore_dspy.processor"]
    assert len(compile_logs) == 1
    assert "bad.dspy, line 3" in compile_logs[0].getMessage()
    request_logs = [r.getMessage() for r in caplog.records if r.name == "ahcore.errors"]
    assert len(request_logs) == 2 and all("bad.dspy, line 3" in m for m in request_logs)


async def test_fixing_a_syntax_error_takes_effect(start: Any) -> None:
    client = await start({"wwwroot/fix.dspy": "return ("})
    assert (await client.get("/fix.dspy")).status == 500
    rewrite(get_site(client.app).workdir / "wwwroot/fix.dspy", "return 'fixed'")
    assert await (await client.get("/fix.dspy")).text() == "fixed"


async def test_top_level_yield_is_rejected(start: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = await start({"wwwroot/gen.dspy": "x = 1\nyield x\n"})
    with caplog.at_level(logging.ERROR):
        assert (await client.get("/gen.dspy")).status == 500
    assert "gen.dspy, line 2: 'yield' is not allowed" in caplog.text


async def test_http_exceptions_pass_through(start: Any) -> None:
    client = await start(
        {
            "wwwroot/missing.dspy": "server_error(404)",
            "wwwroot/busy.dspy": "server_error(503)",
            "wwwroot/go.dspy": "await redirect('/elsewhere')",
        }
    )
    assert (await client.get("/missing.dspy")).status == 404
    assert (await client.get("/busy.dspy")).status == 503
    resp = await client.get("/go.dspy", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].endswith("/elsewhere")


# ---------------------------------------------------------------- time limit


async def test_stuck_script_gets_504_quickly_and_a_warning(
    start: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await start({"wwwroot/stuck.dspy": "await async_sleep(10)"}, {"time_limit": 0.2})
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="ahcore_dspy.processor"):
        resp = await client.get("/stuck.dspy")
    elapsed = time.monotonic() - began
    assert resp.status == 504
    assert "Traceback" not in await resp.text()
    assert elapsed < 3
    warnings = [r for r in caplog.records if r.name == "ahcore_dspy.processor"]
    assert warnings and warnings[0].levelno == logging.WARNING
    assert "stuck.dspy" in warnings[0].getMessage()


async def test_a_quick_script_is_not_limited(start: Any) -> None:
    client = await start(
        {"wwwroot/quick.dspy": "await async_sleep(0.01)\nreturn 'done'"}, {"time_limit": 0.5}
    )
    assert await (await client.get("/quick.dspy")).text() == "done"


async def test_scripts_own_timeout_is_a_500_not_a_504(start: Any) -> None:
    script = "import asyncio\nawait asyncio.wait_for(async_sleep(5), 0.01)\n"
    client = await start({"wwwroot/own.dspy": script}, {"time_limit": 5})
    assert (await client.get("/own.dspy")).status == 500


@pytest.mark.parametrize("bad", [0, -1, "30", True, None])
async def test_bad_time_limit_stops_startup(start: Any, bad: Any) -> None:
    with pytest.raises(PluginError, match="plugins.dspy.time_limit"):
        await start({"wwwroot/a.dspy": "return 1"}, {"time_limit": bad})


async def test_watchdog_tells_its_deadline_apart() -> None:
    """The watchdog stops work past its limit (never before it) and lets a
    script's own TimeoutError and outside cancellations through."""
    watchdog = Watchdog()
    assert await watchdog.run(asyncio.sleep(0, "v"), 1) == "v"
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(TimeLimitExceeded):
        await watchdog.run(asyncio.sleep(5), 0.05)
    assert 0.05 <= loop.time() - began < 0.05 + 2 * Watchdog.GRAIN + 0.5

    async def own_timeout() -> None:
        raise asyncio.TimeoutError

    with pytest.raises(asyncio.TimeoutError):
        await watchdog.run(own_timeout(), 5)

    # Cancelled from outside (a client gone away): a cancellation, not a 504.
    task = asyncio.ensure_future(watchdog.run(asyncio.sleep(5), 5))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # A script that swallows the cancellation finishes; the task is not left cancelled.
    async def stubborn() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return "kept going"
        return "slept"

    assert await watchdog.run(stubborn(), 0.05) == "kept going"
    await asyncio.sleep(0)  # a pending cancellation would land here
    assert not watchdog._buckets or all(not b for b in watchdog._buckets.values())


def test_watchdog_cancels_the_task_of_the_loop_it_runs_in() -> None:
    """It remembers the loop it last ran in; run from another loop, it finds that loop's task."""
    watchdog = Watchdog()

    async def limited() -> str:
        try:
            await watchdog.run(asyncio.sleep(5), 0.05)
        except TimeLimitExceeded:
            return "stopped"
        return "overran"

    for _ in range(2):  # two loops one after another, each with its own task
        assert asyncio.run(limited()) == "stopped"


# ---------------------------------------------------------------- isolation between requests


async def test_concurrent_requests_never_see_each_others_params(start: Any) -> None:
    script = "await async_sleep(random.random() / 50)\nreturn {'n': params_kw.n}\n"
    client = await start({"wwwroot/n.dspy": script})
    responses = await asyncio.gather(*(client.get(f"/n.dspy?n={i}") for i in range(50)))
    answers = [await r.json() for r in responses]
    assert answers == [{"n": str(i)} for i in range(50)]


async def test_params_never_shadow_namespace_names(start: Any) -> None:
    script = (
        "return {'json': type(json).__name__, 'redirect': callable(redirect),\n"
        "        'params': [params_kw.json, params_kw.redirect, params_kw.request]}\n"
    )
    client = await start({"wwwroot/shadow.dspy": script})
    resp = await client.get("/shadow.dspy?json=1&redirect=x&request=y")
    assert await resp.json() == {"json": "module", "redirect": True, "params": ["1", "x", "y"]}


async def test_globals_set_by_one_request_do_not_leak_to_the_next(start: Any) -> None:
    script = (
        "global counter\ncounter = globals().get('counter', 0) + 1\nreturn {'counter': counter}\n"
    )
    client = await start({"wwwroot/g.dspy": script})
    assert await (await client.get("/g.dspy")).json() == {"counter": 1}
    assert await (await client.get("/g.dspy")).json() == {"counter": 1}


# ---------------------------------------------------------------- source fidelity

TAB_SCRIPT = (
    "if True:\n"
    "\ttext = '''first\n"
    "    four spaces\n"
    "\tone tab\n"
    "last'''\n"
    '\tother = """\n'
    '\t\t\ttabs"""\n'
    "return {'text': text, 'other': other}\n"
)
SPACE_SCRIPT = TAB_SCRIPT.replace("\ttext", "    text").replace("\tother", "    other")


@pytest.mark.parametrize("script", [TAB_SCRIPT, SPACE_SCRIPT], ids=["tabs", "spaces"])
async def test_multiline_strings_survive_intact(start: Any, script: str) -> None:
    client = await start({"wwwroot/m.dspy": script})
    resp = await client.get("/m.dspy")
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "text": "first\n    four spaces\n\tone tab\nlast",
        "other": "\n\t\t\ttabs",
    }


async def test_bom_and_site_coding(make_site: MakeSite, ahcore_client: Client) -> None:
    cfg = config()
    cfg["website"]["coding"] = "gbk"
    site = make_site(config=cfg, files={"wwwroot/zh.dspy": "return '中文'".encode("gbk")})
    client = await ahcore_client(site)
    assert await (await client.get("/zh.dspy")).text() == "中文"

    bom = "\ufeffreturn 'bom'".encode()
    client = await ahcore_client(make_site(config=config(), files={"wwwroot/b.dspy": bom}))
    assert await (await client.get("/b.dspy")).text() == "bom"


# ---------------------------------------------------------------- path_call


async def test_path_call_returns_the_raw_value(start: Any) -> None:
    client = await start(
        {
            "wwwroot/api/double.dspy": "return {'doubled': params_kw.x * 2}",
            "wwwroot/api/text.dspy": "return 'just text'",
            "wwwroot/caller.dspy": (
                "d = await path_call('api/double.dspy', x=21)\n"
                "t = await path_call('/api/text.dspy')\n"
                "return {'d': d, 'd_type': type(d).__name__, 't': t, 't_type': type(t).__name__,\n"
                "        'mine': params_kw.x}\n"
            ),
        }
    )
    resp = await client.get("/caller.dspy?x=own")
    assert await resp.json() == {
        "d": {"doubled": 42},
        "d_type": "dict",
        "t": "just text",
        "t_type": "str",
        "mine": "own",
    }


async def test_path_call_propagates_http_errors(start: Any) -> None:
    client = await start(
        {
            "wwwroot/inner.dspy": "server_error(403)",
            "wwwroot/outer.dspy": "await path_call('inner.dspy')\nreturn 'unreached'",
        }
    )
    assert (await client.get("/outer.dspy")).status == 403


# ---------------------------------------------------------------- enabling


async def test_ahserver_config_without_plugins_section(
    make_site: MakeSite, ahcore_client: Client
) -> None:
    cfg = config()
    del cfg["plugins"]
    client = await ahcore_client(make_site(config=cfg, files={"wwwroot/a.dspy": "return [1]"}))
    assert await (await client.get("/a.dspy")).json() == [1]


async def test_source_is_never_served_raw(start: Any) -> None:
    client = await start({"wwwroot/secret.dspy": "password = 'hunter2'\nreturn 'ok'"})
    assert "hunter2" not in await (await client.get("/secret.dspy")).text()


# ---------------------------------------------------------------- the compiler alone


def test_compile_script_keeps_line_numbers_and_future_imports() -> None:
    source = "from __future__ import annotations\n\ndef f(x: Undefined) -> int:\n    return 1\nreturn f\n"
    code = compile_script(source, "/site/x.dspy")
    assert code.co_filename == "/site/x.dspy"
    assert code.co_name == "__dspy_main__"
    assert code.co_firstlineno == 3


def test_compile_script_accepts_future_imports_after_a_docstring() -> None:
    source = '"""What this script does."""\nfrom __future__ import annotations\nreturn 1\n'
    assert compile_script(source, "/site/d.dspy").co_firstlineno == 3


def test_compile_script_accepts_an_empty_file() -> None:
    assert compile_script("", "/site/empty.dspy").co_name == "__dspy_main__"
    assert compile_script("# only a comment\n", "/site/c.dspy").co_name == "__dspy_main__"


def test_compile_script_allows_yield_in_nested_functions() -> None:
    compile_script("def gen():\n    yield 1\nreturn list(gen())\n", "/site/g.dspy")
    with pytest.raises(SyntaxError) as info:
        compile_script("x = 1\n\nyield x\n", "/site/y.dspy")
    assert info.value.lineno == 3 and info.value.filename == "/site/y.dspy"
