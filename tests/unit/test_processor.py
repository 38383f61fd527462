"""ahcore.processor: return conventions, the suffix table and the per-file processor cache."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from aiohttp import web

from ahcore.processor import (
    DEFAULT_METHODS,
    Processor,
    ProcessorCache,
    ProcessorRegistry,
    ProcessorSpec,
    to_response,
    unavailable_spec,
)

# ---------------------------------------------------------------- to_response


def test_to_response_conventions() -> None:
    own = web.Response(status=201)
    assert to_response(own) is own
    empty = to_response(None)
    assert empty.status == 200 and empty.body is None
    for value in ({"a": 1}, [1, 2], (1, 2)):
        resp = to_response(value)
        assert resp.content_type == "application/json"
        assert json.loads(resp.body) == (list(value) if isinstance(value, tuple) else value)
    html = to_response("<p>hi</p>")
    assert (html.content_type, html.charset, html.text) == ("text/html", "utf-8", "<p>hi</p>")
    raw = to_response(b"\x00\x01")
    assert raw.content_type == "application/octet-stream" and raw.body == b"\x00\x01"
    assert to_response(bytearray(b"ab")).body == b"ab"
    assert to_response(memoryview(b"ab")).body == b"ab"
    assert json.loads(to_response(42).body) == 42


@pytest.mark.parametrize(
    ("text", "ctype"),
    [
        ('{"a": 1}', "application/json"),
        ('  [1, 2]\n', "application/json"),
        ("{not json but looks like it}", "application/json"),  # as ahserver judged: by its ends
        ("{ unbalanced", "text/html"),
        ("[a] and more", "text/html"),
        ("", "text/html"),
    ],
)
def test_strings_that_look_like_json_are_json(text, ctype) -> None:
    assert to_response(text).content_type == ctype


# ---------------------------------------------------------------- the registry


def spec(name: str, *suffixes: str) -> ProcessorSpec:
    return ProcessorSpec(name, suffixes, Processor)


def test_the_longest_suffix_wins_whatever_the_order() -> None:
    tmpl, tmpljs, dspy = spec("tmpl", ".tmpl"), spec("tmpljs", ".tmpl.js"), spec("dspy", ".dspy")
    registry = ProcessorRegistry([(".tmpl", tmpl), (".dspy", dspy), (".tmpl.js", tmpljs)])
    assert registry.match("app.tmpl.js") == (".tmpl.js", tmpljs)
    assert registry.match("app.tmpl") == (".tmpl", tmpl)
    assert registry.match("x.dspy") == (".dspy", dspy)
    assert registry.match("app.js") is None
    assert registry.match("x.DSPY") is None  # suffixes are case-sensitive; see NEVER_RAW
    assert registry.suffixes == frozenset({".tmpl", ".tmpl.js", ".dspy"})
    assert [s for s, _ in registry][0] == ".tmpl.js"


def test_a_name_that_is_only_the_suffix_matches_nothing() -> None:
    registry = ProcessorRegistry([(".dspy", spec("dspy", ".dspy"))])
    assert registry.match(".dspy") is None
    assert registry.match("a.dspy") is not None


def test_an_empty_registry() -> None:
    assert ProcessorRegistry([]).match("x.dspy") is None


def test_spec_defaults() -> None:
    s = spec("x", ".x")
    assert s.methods == DEFAULT_METHODS == ("GET", "HEAD", "POST")
    assert s.cross_site is False and s.data is False
    assert ProcessorSpec("x", (".x",), Processor, plugin="a") == ProcessorSpec(
        "x", (".x",), Processor, plugin="b"
    )  # the plugin name is bookkeeping, not identity


# ---------------------------------------------------------------- unavailable processors


async def test_an_unavailable_processor_answers_501_never_the_source(tmp_path) -> None:
    source = tmp_path / "x.llm"
    source.write_text("SECRET SOURCE")
    s = unavailable_spec("llm", ".llm", "install ahcore-llm")
    assert s.name == "llm" and s.suffixes == (".llm",)
    assert set(s.methods) >= {"GET", "POST", "PUT", "PATCH", "DELETE"}
    processor = s.factory(source, None)
    with pytest.raises(web.HTTPNotImplemented) as info:
        await processor.respond(None)
    assert "'.llm' files need the processor 'llm'" in info.value.text
    assert "install ahcore-llm" in info.value.text
    assert "SECRET" not in info.value.text


async def test_the_base_processor_has_nothing_to_produce(tmp_path) -> None:
    with pytest.raises(NotImplementedError):
        await Processor(tmp_path / "x", None).produce(None)


# ---------------------------------------------------------------- the cache


class Counting(Processor):
    """Counts builds; ``gate`` holds load() until the test releases it."""

    builds = 0
    gate: asyncio.Event | None = None
    fail: BaseException | None = None

    async def load(self) -> None:
        type(self).builds += 1
        if type(self).gate is not None:
            await type(self).gate.wait()
        if type(self).fail is not None:
            raise type(self).fail
        self.text = self.path.read_text()

    async def produce(self, context):
        return self.text


@pytest.fixture
def counting():
    class Fresh(Counting):
        builds = 0

    return ProcessorSpec("c", (".c",), Fresh), Fresh


async def test_a_processor_is_built_once_and_reused_while_unchanged(tmp_path, counting) -> None:
    s, cls = counting
    path = tmp_path / "a.c"
    path.write_text("one")
    cache = ProcessorCache()
    assert cache.fresh(path, path.stat()) is None
    first = await cache.get(s, path, path.stat(), None)
    assert await cache.get(s, path, path.stat(), None) is first
    assert cache.fresh(path, path.stat()) is first
    assert cls.builds == 1 and len(cache) == 1


async def test_concurrent_first_requests_share_one_build(tmp_path, counting) -> None:
    s, cls = counting
    cls.gate = asyncio.Event()
    path = tmp_path / "a.c"
    path.write_text("one")
    cache = ProcessorCache()
    st = path.stat()
    waiting = [asyncio.ensure_future(cache.get(s, path, st, None)) for _ in range(5)]
    await asyncio.sleep(0)
    cls.gate.set()
    results = await asyncio.gather(*waiting)
    assert cls.builds == 1
    assert all(r is results[0] for r in results)


async def test_a_changed_file_is_rebuilt(tmp_path, counting) -> None:
    s, cls = counting
    path = tmp_path / "a.c"
    path.write_text("one")
    cache = ProcessorCache()
    first = await cache.get(s, path, path.stat(), None)
    path.write_text("two, longer")  # size (and mtime) change
    assert cache.fresh(path, path.stat()) is None
    second = await cache.get(s, path, path.stat(), None)
    assert second is not first and await second.produce(None) == "two, longer"
    # Same size, same mtime, another inode (an editor's atomic replace): rebuilt too.
    st = path.stat()
    replacement = tmp_path / "new.c"
    replacement.write_text("two, LONGER")
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, path)
    third = await cache.get(s, path, path.stat(), None)
    assert third is not second and await third.produce(None) == "two, LONGER"
    assert cls.builds == 3 and len(cache) == 1


async def test_a_failed_build_reaches_every_waiter_and_is_retried(tmp_path, counting) -> None:
    s, cls = counting
    cls.gate = asyncio.Event()
    cls.fail = SyntaxError("bad file")
    path = tmp_path / "a.c"
    path.write_text("one")
    cache = ProcessorCache()
    st = path.stat()
    waiting = [asyncio.ensure_future(cache.get(s, path, st, None)) for _ in range(3)]
    await asyncio.sleep(0)
    cls.gate.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, SyntaxError) for r in results)
    assert cls.builds == 1 and len(cache) == 0  # not cached
    cls.gate, cls.fail = None, None
    assert await (await cache.get(s, path, st, None)).produce(None) == "one"
    assert cls.builds == 2


async def test_a_cancelled_first_request_does_not_wedge_the_others(tmp_path, counting) -> None:
    s, cls = counting
    cls.gate = asyncio.Event()
    path = tmp_path / "a.c"
    path.write_text("one")
    cache = ProcessorCache()
    st = path.stat()
    first = asyncio.ensure_future(cache.get(s, path, st, None))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(cache.get(s, path, st, None))
    await asyncio.sleep(0)
    second.cancel()  # a waiter going away does not cancel the shared build
    cls.gate.set()
    assert await (await first).produce(None) == "one"
    with pytest.raises(asyncio.CancelledError):
        await second
    assert await cache.get(s, path, st, None) is await first


async def test_clear_forgets_everything(tmp_path, counting) -> None:
    s, cls = counting
    path = tmp_path / "a.c"
    path.write_text("one")
    cache = ProcessorCache()
    first = await cache.get(s, path, path.stat(), None)
    cache.clear()
    assert len(cache) == 0 and cache.fresh(path, path.stat()) is None
    assert await cache.get(s, path, path.stat(), None) is not first
