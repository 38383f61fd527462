"""ahcore.namespace: the kernel's names in every processor namespace (SPEC §6)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import re
import threading

import pytest
from aiohttp import web

from ahcore import namespace as ns_mod
from ahcore.appkeys import get_site
from ahcore.context import RequestContext
from ahcore.namespace import (
    ArgsConvert,
    abspath,
    basic_auth_headers,
    entire_url,
    file_realpath,
    gethost,
    i18n,
    i18nDict,
    monthfirstday,
    redirect,
    rfexe,
    str2date,
    str2datetime,
    strdate_add,
    terminal_type,
    uuid,
    websocket_url,
)

# ---------------------------------------------------------------- pure helpers


def test_dates() -> None:
    # appPublic's str2Date: a datetime (00:00 without a time), None for bad text.
    assert str2date(" 2024-02-29 ") == datetime.datetime(2024, 2, 29)
    assert str2date("2024-02-29 extra") is None
    assert str2date("29/02/2024") is None
    assert str2datetime("2024-02-29 13:05:09") == datetime.datetime(2024, 2, 29, 13, 5, 9)
    assert monthfirstday("2024-02-29") == "2024-02-01"
    assert monthfirstday(datetime.date(2023, 12, 31)) == "2023-12-01"
    assert re.fullmatch(r"\d{4}-\d\d-01", monthfirstday())
    with pytest.raises(ValueError):
        str2datetime("29/02/2024")


@pytest.mark.parametrize(
    ("start", "kw", "result"),
    [
        ("2024-01-31", {"months": 1}, "2024-02-29"),  # month ends clamp
        ("2023-01-31", {"months": 1}, "2023-02-28"),
        ("2024-03-31", {"months": -1}, "2024-02-29"),
        ("2024-01-15", {"months": -13}, "2022-12-15"),
        ("2024-02-29", {"years": 1}, "2025-02-28"),
        ("2024-12-31", {"days": 1}, "2025-01-01"),
        ("2024-01-31", {"months": 1, "days": 1}, "2024-03-01"),  # days first, then months
        ("2024-01-30", {"months": 1, "days": 1}, "2024-02-29"),
        ("2024-05-05", {}, "2024-05-05"),
    ],
)
def test_strdate_add(start, kw, result) -> None:
    assert strdate_add(start, **kw) == result


def test_uuid_is_a_nanoid_and_new_each_time() -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{21}", uuid())
    assert uuid() != uuid()


def test_basic_auth_headers() -> None:
    header = basic_auth_headers("ann", "p:ss wörd")["Authorization"]
    assert header.startswith("Basic ")
    assert base64.b64decode(header[6:]).decode() == "ann:p:ss wörd"


@pytest.mark.parametrize(
    ("agent", "kind"),
    [
        # ahserver 1.2.0's clientkeys (processorResource.py, _handle): first match wins
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148 MicroMessenger/8.0", "iphone"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", "iphone"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36", "androidpad"),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)", "ipad"),
        ("Mozilla/5.0 (Linux; Android 14; SM-X710) Safari/537.36", "androidpad"),
        ("Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Lumia 950)", "androidpad"),
        ("Mozilla/5.0 (Windows Phone 8.0; Trident/6.0; IEMobile/10.0)", "winphone"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120", "pc"),
        ("mozilla/5.0 (iphone)", "pc"),  # case-sensitive, as ahserver's re.findall
        ("", "pc"),
    ],
)
def test_terminal_type(agent, kind) -> None:
    assert terminal_type(agent) == kind


def test_args_convert_looks_names_up_and_never_evaluates() -> None:
    conv = ArgsConvert()
    ns = {"user": {"id": 7, "name": "ann"}, "n": 3, "items": [1]}
    assert conv.convert("${n}$", ns) == 3  # a whole marker keeps the value's type
    assert conv.convert("id=${user.id}$, name=${user.name}$", ns) == "id=7, name=ann"
    assert conv.convert({"a": ["${n}$", "x"], "b": 1}, ns) == {"a": [3, "x"], "b": 1}
    assert conv.convert("${missing}$ and ${user.missing}$", ns) == " and "  # default ''
    # Code between the markers is just text that names nothing.
    assert conv.convert("${__import__('os').system('x')}$", ns) == ""
    assert conv.convert("${n.__class__}$", ns, default="?") == "?"
    other = ArgsConvert("{{", "}}")
    assert other.convert("{{n}} and ${n}$", ns) == "3 and ${n}$"


async def test_rfexe_runs_in_a_thread() -> None:
    main = threading.get_ident()
    ident = await rfexe(lambda a, b=0: (threading.get_ident(), a + b), 1, b=2)
    assert ident[1] == 3 and ident[0] != main


# ---------------------------------------------------------------- names bound to the request


@pytest.fixture
async def site(make_app):
    app = make_app(
        {
            "website": {"trusted_proxies": ["10.0.0.0/8"]},
            "filesroot": "$[workdir]$/files",
            "langMapping": {"zh": "zh-cn"},
            "shop": {"currency": "EUR"},
        },
        files={
            "wwwroot/shop/cart.txt": "c",
            "wwwroot/shop/index.html": "i",
            "i18n/zh-cn/msg.txt": "Hello:你好\n",
        },
    )
    site = get_site(app)
    await site.build_namespace(app)
    return site


@pytest.fixture
def activate(site, make_request):
    tokens = []

    def start(path="/shop/cart.txt", headers=None, remote="127.0.0.1"):
        request = make_request("GET", path, headers, app=site.app, remote=remote)
        context = RequestContext(request, site, site.resolve(path.split("?")[0]))
        tokens.append((context, context.activate()))
        return context

    yield start
    for context, token in reversed(tokens):
        # An async test activated it in its own task's context, gone with the task;
        # a sync test in this thread's, which must not keep it for the next test.
        with contextlib.suppress(ValueError):
            context.deactivate(token)


def test_entire_url(activate) -> None:
    activate("/shop/cart.txt")
    assert entire_url("/a/b") == "http://example.org/a/b"
    assert entire_url("other.txt") == "http://example.org/shop/other.txt"  # beside the file
    assert entire_url("https://elsewhere.example/x") == "https://elsewhere.example/x"
    assert websocket_url("/ws") == "ws://example.org/ws"
    assert websocket_url("wss://x.example/ws") == "wss://x.example/ws"


def test_entire_url_resolves_dots_and_makes_ws_urls_as_ahserver(activate) -> None:
    # ahserver's entireUrl: relatedurl/realurl, then urlWebsocketify (processorResource.py)
    activate("/shop/cart.txt")
    assert entire_url("../a/./b.dspy") == "http://example.org/a/b.dspy"
    assert entire_url("../../../x.dspy?next=../y") == "http://example.org/x.dspy?next=../y"
    assert entire_url("sub/") == "http://example.org/shop/sub/"
    assert entire_url("\\/a\\/b") == "http://example.org/a/b"  # ahserver read "\/" as "/"
    assert entire_url("/chat.ws") == "ws://example.org/chat.ws"
    assert entire_url("https://x.example/live.wss") == "wss://x.example/live.wss"
    assert entire_url("/chat.ws?room=1") == "http://example.org/chat.ws?room=1"  # as ahserver: the end only


def test_entire_url_behind_a_trusted_proxy(activate) -> None:
    activate(headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example",
                      "X-Forwarded-Prepath": "/store"}, remote="10.0.0.1")
    assert entire_url("/a") == "https://shop.example/store/a"
    assert websocket_url("/ws") == "wss://shop.example/store/ws"


def test_entire_url_outside_a_request_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no ahcore request"):
        entire_url("/a")


async def test_redirect_raises_a_302_to_the_absolute_url(activate) -> None:
    activate()
    with pytest.raises(web.HTTPFound) as info:
        await redirect("/login")
    assert info.value.location == "http://example.org/login"


def test_gethost_is_the_host_the_client_asked_for(activate) -> None:
    # ahserver: X-Forwarded-Host, else Host (processorResource.py, gethost); here a
    # forwarded host only from a trusted proxy, which this request is not from.
    activate(remote="192.0.2.44", headers={"Host": "shop.example:8080", "X-Forwarded-Host": "evil"})
    assert gethost() == "shop.example:8080"


def test_abspath_resolves_like_a_request(activate, site) -> None:
    activate()
    assert abspath("/shop/cart.txt").endswith("wwwroot/shop/cart.txt")
    assert abspath("/shop/") .endswith("shop/index.html")
    for url in ("/shop", "/missing", "/../conf/config.json", "/%2e%2e/x"):
        assert abspath(url) is None


def test_abspath_takes_ahserver_s_request_argument_and_relative_urls(activate, site) -> None:
    context = activate()
    # ahserver's per-request abspath(request, path) (processorResource.py)
    assert abspath(context.request, "/shop/cart.txt") == abspath("/shop/cart.txt")
    assert abspath("cart.txt") == abspath("../shop/./cart.txt") == abspath("/shop/cart.txt")
    assert abspath("http://elsewhere.example/shop/cart.txt") is None
    with pytest.raises(TypeError, match="abspath"):
        abspath()


async def test_file_realpath_stays_in_filesroot(activate, site) -> None:
    activate()
    sub = await site.uploads.save_bytes(b"x", "a.txt")
    assert file_realpath(sub).endswith(sub)
    with pytest.raises(web.HTTPBadRequest):
        file_realpath("../conf/config.json")


def test_i18n_follows_the_visitors_language(activate) -> None:
    activate(headers={"Accept-Language": "zh;q=0.9, fr"})
    assert i18n("Hello") == "你好"
    assert i18n("Unknown") == "Unknown"
    # ahserver's i18nDict() is json.dumps(table) (processorResource.py, i18nDICT)
    assert i18nDict() == '{"Hello": "\\u4f60\\u597d"}'
    assert json.loads(i18nDict()) == {"Hello": "你好"}
    assert i18nDict().__html__() == i18nDict()  # printed as is by an autoescaping template


def test_i18n_without_a_match_is_the_text(activate) -> None:
    activate(headers={"Accept-Language": "fr"})
    assert i18n("Hello") == "Hello"
    assert i18nDict() == "{}"


async def test_global_names(site, activate) -> None:
    ns = site.global_namespace
    assert ns["configValue"](".shop.currency") == "EUR"
    assert ns["configValue"](".shop.missing", "dflt") == "dflt"
    assert ns["webpath"](str(site.workdir / "wwwroot" / "shop" / "cart.txt")) == "/shop/cart.txt"
    sub = await ns["save_file"](b"saved", "n.bin")
    assert site.uploads.realpath(sub).read_bytes() == b"saved"
    # ahserver 1.2.0: save_file takes text too; webpath of a stored file is the
    # part after filesroot (FileStorage.webpath), what idfile?path= takes
    text_sub = await ns["save_file"]("保存 text", "t.txt")
    assert site.uploads.realpath(text_sub).read_text("utf-8") == "保存 text"
    assert ns["webpath"](str(site.uploads.realpath(text_sub))) == "/" + text_sub.lstrip("/")
    assert ns["resource"] is site and ns["event_dispatcher"] is site.events
    assert ns["async_sleep"] is asyncio.sleep
    for name in ("entire_url", "path_call", "i18n", "redirect", "gethost", "bad_request"):
        assert name in ns, name
    activate()
    with pytest.raises(web.HTTPBadRequest) as info:
        ns["bad_request"]("no such page")
    assert info.value.text == "no such page\n"


async def test_save_file_without_filesroot_says_what_is_missing(make_app) -> None:
    app = make_app()
    site = get_site(app)
    await site.build_namespace(app)
    with pytest.raises(RuntimeError, match="save_file needs 'filesroot'"):
        site.global_namespace["save_file"](b"x")


async def test_download_file(activate, site) -> None:
    activate()
    sub = await site.uploads.save_bytes(b"x", "a.txt")
    resp = await ns_mod.download_file(sub, 'evil"\r\nSet-Cookie: x=1.txt')
    # Control characters become "_", the quote is escaped: still one header.
    assert resp.headers["Content-Disposition"] == (
        'attachment; filename="evil\\"__Set-Cookie: x=1.txt"; '
        "filename*=utf-8''evil%22__Set-Cookie%3A%20x%3D1.txt"
    )
    with pytest.raises(web.HTTPNotFound):
        await ns_mod.download_file("2020/01/01/missing.bin")
    with pytest.raises(web.HTTPBadRequest):
        await ns_mod.download_file("../conf/config.json")


async def test_namespace_gives_terminal_type_ref_real_path_and_user(activate) -> None:
    ipad = {"User-Agent": "Mozilla/5.0 (iPad; CPU OS 17_0)"}
    for build in (RequestContext.namespace, RequestContext.script_namespace):
        context = activate(headers=ipad)
        names = await build(context)
        assert names["terminalType"] == "ipad"
        assert names["ref_real_path"] == str(context.resolved.path)
        assert names["user"] is None  # no session cookie, nobody logged in


async def test_stream_response_sends_each_chunk(aiohttp_client) -> None:
    async def chunks():
        yield "text "
        yield b"bytes "
        yield {"json": 1}

    async def handler(request):
        return await ns_mod.stream_response(request, chunks(), content_type="text/plain")

    async def sync_handler(request):
        return await ns_mod.stream_response(request, ["a", "b"])

    app = web.Application()
    app.router.add_get("/", handler)
    app.router.add_get("/sync", sync_handler)
    client = await aiohttp_client(app)
    resp = await client.get("/")
    assert await resp.read() == b'text bytes {"json": 1}'  # ahserver's json.dumps, no newline
    assert (await (await client.get("/sync")).read()) == b"ab"
