"""Script helpers that behave as ahserver 1.2.0's (appPublic 5.3.2): dates, uuid, ArgsConvert, rfexe, stream_response.

Each expected value is what ahserver/appPublic gives; the comment names the
line of its source it comes from.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from aiohttp import web

from ahcore.api import hookimpl, register_function
from ahcore.namespace import (
    ArgsConvert,
    monthfirstday,
    paramify,
    str2date,
    str2datetime,
    strdate_add,
    uuid,
)

# ---------------------------------------------------------------- dates


def test_str2date_gives_a_datetime_and_reads_unpadded_text() -> None:
    # appPublic/timeUtils.py:80-88 str2Date → ymdDate → datetime(y, m, d, H, M, S)
    day = str2date("2024-1-5")
    assert type(day) is datetime.datetime
    assert day == datetime.datetime(2024, 1, 5, 0, 0)
    assert str2date("2024-01-05 10:20:30") == datetime.datetime(2024, 1, 5, 10, 20, 30)
    assert str2date("2024-1-5 1:2:3") == datetime.datetime(2024, 1, 5, 1, 2, 3)


@pytest.mark.parametrize("bad", ["bad", "29/02/2024", "2024-02-30", "2024-01-05 10:00:xx", "", None])
def test_str2date_answers_none_for_bad_input(bad: Any) -> None:
    # appPublic/timeUtils.py:89-91: any exception → return None
    assert str2date(bad) is None


def test_str2datetime_reads_unpadded_text_and_refuses_bad_text() -> None:
    # appPublic/timeUtils.py:95-103 str2Datetime: '00:00:00' without a time; bad text raises
    assert str2datetime("2024-1-5 1:2:3") == datetime.datetime(2024, 1, 5, 1, 2, 3)
    assert str2datetime("2024-1-5") == datetime.datetime(2024, 1, 5)
    with pytest.raises(ValueError, match="not-a-date"):
        str2datetime("not-a-date")


@pytest.mark.parametrize(
    ("start", "kw", "result"),
    [
        ("2024-1-31", {"days": 1}, "2024-02-01"),  # timeUtils.py:105-109 (str2Datetime reads '2024-1-31')
        ("2024-12-31", {"days": 1}, "2025-01-01"),
        ("2023-01-31", {"months": 1}, "2023-02-28"),  # timeUtils.py:111-122 addMonths clamps to the month's end
        ("2024-02-29", {"years": 1}, "2025-02-28"),  # timeUtils.py:124-131 addYears clamps too
        # timeUtils.py:133-141 dateAdd: days first, then months (01-31, then a month on, clamped)
        ("2024-01-30", {"days": 1, "months": 1}, "2024-02-29"),
        ("2024-5-5 10:00:00", {}, "2024-05-05"),  # timeUtils.py:72-75 date2str: the date part only
    ],
)
def test_strdate_add(start: str, kw: dict[str, int], result: str) -> None:
    assert strdate_add(start, **kw) == result


def test_strdate_add_refuses_bad_text() -> None:
    # timeUtils.py:106: str2Datetime raises on text that is no date
    with pytest.raises(ValueError):
        strdate_add("tomorrow", days=1)


def test_monthfirstday() -> None:
    # timeUtils.py:20-22: this month's first day, 'YYYY-MM-01'
    today = datetime.date.today()
    assert monthfirstday() == f"{today.year:04d}-{today.month:02d}-01"
    # ahcore's extra: a date or date text, unpadded as str2date reads it
    assert monthfirstday("2024-3-9") == "2024-03-01"
    assert monthfirstday(datetime.datetime(2023, 12, 31, 23, 59)) == "2023-12-01"


# ---------------------------------------------------------------- uuid


def test_uuid_is_a_21_character_nanoid() -> None:
    # appPublic/uniqueID.py:7-8 getID(size=21) → nanoid.generate(size=size); ahserver's g.uuid = getID
    ids = {uuid() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{21}", i) for i in ids)
    assert re.fullmatch(r"[A-Za-z0-9_-]{8}", uuid(8))
    assert re.fullmatch(r"[A-Za-z0-9_-]{40}", uuid(size=40))


# ---------------------------------------------------------------- ArgsConvert, paramify


def test_args_convert_puts_default_for_an_unknown_name() -> None:
    conv = ArgsConvert("[[", "]]")
    # appPublic/argsConvert.py:22 convert(obj, namespace, default=''), :47-59 getVarValue → default
    assert conv.convert("a=[[x]]", {}) == "a="
    assert conv.convert("[[x]]", {}) == ""
    assert conv.convert("a=[[x]] [[y]]", {"y": 2}) == "a= 2"
    assert conv.convert("[[x]]", {}, default=None) is None  # :68-70 one marker alone: the value itself
    assert conv.convert("a=[[x]]", {}, default="?") == "a=?"
    assert conv.convert("[[x]]", {}, default=lambda name: f"<{name}>") == "<x>"  # :57-58 callable default
    assert conv.convert({"k": ["[[x]]", "[[n]]"], "n": 1}, {"n": 0}) == {"k": ["", 0], "n": 1}


def test_args_convert_keeps_the_type_of_a_lone_marker_and_reads_dotted_names() -> None:
    conv = ArgsConvert("${", "}$")
    ns = {"n": 0, "user": {"id": 7}, "items": [1]}
    assert conv.convert("${n}$", ns) == 0  # argsConvert.py:68-70
    assert conv.convert("${items}$", ns) == [1]
    assert conv.convert("id=${user.id}$ n=${n}$", ns) == "id=7 n=0"  # :71 str(v) inside text
    assert conv.convert("${ n }$", ns) == 0  # eval(' n ') finds n


def test_find_all_variables_lists_the_texts_in_order_with_repeats() -> None:
    # appPublic/argsConvert.py:37-42: re.findall(pre + '.*?' + post), the text between the markers
    conv = ArgsConvert("[[", "]]")
    assert conv.findAllVariables("[[a]] [[b.c]] [[a]] [[ x ]] [[]]") == ["a", "b.c", "a", " x ", ""]
    assert conv.findAllVariables("no markers") == []


def test_args_convert_never_evaluates_the_text() -> None:
    # appPublic would eval() these (argsConvert.py:52); ahcore only looks names up.
    called: list[int] = []
    ns = {"boom": lambda: called.append(1) or "ran", "a": 1}
    conv = ArgsConvert("${", "}$")
    assert conv.convert("${boom()}$", ns) == ""
    assert conv.convert("${a + 1}$", ns) == ""
    assert conv.convert("x${__import__('os').getpid()}$", ns) == "x"
    assert called == []


def test_paramify_blanks_unknown_names() -> None:
    # ahserver/globalEnv.py:240-242 paramify = ArgsConvert('${', '}$').convert(data, ns), default ''
    assert paramify("${a}$/${b}$", {"a": 1}) == "1/"
    assert paramify({"a": "${a}$", "b": "${b}$"}, {"a": 1}) == {"a": 1, "b": ""}


# ---------------------------------------------------------------- through a .dspy script


class Registers:
    """Registers functions by name at start-up, as an ahserver app module does."""

    @hookimpl
    def on_startup(self, app: web.Application) -> None:
        async def get_module_dbname(module: str) -> str:
            return f"db_of_{module}"

        def add(a: int, b: int = 0) -> int:
            return a + b

        register_function(app, "get_module_dbname", get_module_dbname)
        register_function(app, "add", add)


SCRIPTS = {
    "wwwroot/rf.dspy": (
        "try:\n"
        "    await rfexe('nobody_registered_this')\n"
        "    missing = 'no error'\n"
        "except LookupError as e:\n"
        "    missing = str(e)\n"
        "return {'db': await rfexe('get_module_dbname', 'rbac'), 'add': await rfexe('add', 2, b=3),\n"
        "        'thread': await rfexe(sorted, [3, 1, 2]), 'missing': missing}\n"
    ),
    "wwwroot/agen.dspy": (
        "async def gen():\n"
        "    yield 'text,'\n"
        "    yield {'k': 'é', 'n': [1, 2]}\n"
        "    yield b',bytes'\n"
        "return await stream_response(request, gen)\n"
    ),
    "wwwroot/sgen.dspy": (
        "def gen():\n"
        "    yield 'a'\n"
        "    yield 'b'\n"
        "return await stream_response(request, gen, content_type='text/plain')\n"
    ),
    "wwwroot/iterable.dspy": "return await stream_response(request, ['x', b'y', 3])\n",
    "wwwroot/early.dspy": (
        "async def gen():\n"
        "    raise ValueError('failed before the first chunk')\n"
        "    yield 'never'\n"
        "return await stream_response(request, gen)\n"
    ),
}


@pytest.fixture
async def client(make_site: Any, ahcore_client: Any) -> Any:
    pytest.importorskip("ahcore_dspy", reason="needs the dspy plugin")
    site = make_site(config={"plugins": {"dspy": True, "registers": True}}, files=SCRIPTS)
    return await ahcore_client(site, extra_plugins={"registers": Registers()})


async def test_rfexe_calls_a_registered_function_by_name(client: Any) -> None:
    # ahserver/globalEnv.py:327 g.rfexe = RegisterFunction().exe;
    # appPublic/registerfunction.py:36-45 exe(name, *args, **kw) awaits a coroutine function
    resp = await client.get("/rf.dspy")
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    assert got["db"] == "db_of_rbac"
    assert got["add"] == 5
    assert got["thread"] == [1, 2, 3]  # ahcore's rfexe(callable, ...) still runs it in a thread
    # appPublic answered None for an unknown name; ahcore says which name is missing.
    assert "'nobody_registered_this'" in got["missing"]


async def test_stream_response_takes_an_async_generator_function(client: Any) -> None:
    # ahserver/globalEnv.py:113-132: content_type='text/html', `async for d in gen()`,
    # str as UTF-8, bytes as is, others json.dumps(d, ensure_ascii=False) with no newline
    resp = await client.get("/agen.dspy")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert (await resp.read()).decode("utf-8") == 'text,{"k": "é", "n": [1, 2]},bytes'


async def test_stream_response_takes_a_generator_function_or_an_iterable(client: Any) -> None:
    resp = await client.get("/sgen.dspy")
    assert resp.content_type == "text/plain"
    assert await resp.read() == b"ab"
    resp = await client.get("/iterable.dspy")
    assert resp.content_type == "text/html"
    assert await resp.read() == b"xy3"


async def test_stream_response_error_before_the_first_chunk_is_an_error_response(client: Any) -> None:
    resp = await client.get("/early.dspy")
    assert resp.status == 500
    assert "failed before the first chunk" not in await resp.text()  # the usual error page, no detail
