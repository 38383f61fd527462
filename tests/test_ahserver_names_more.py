"""More ahserver 1.2.0 names scripts call: answer helpers, config lookups, files, HTTP, sessions."""

from __future__ import annotations

import asyncio
import base64
import logging

import pytest
from aiohttp import web

from ahcore.api import get_site

pytest.importorskip("ahcore_dspy", reason="needs the dspy plugin (not in the kernel-only session)")

SCRIPT = """
return {
    'ok': Success([1]), 'need': NeedLogin('/a'), 'noperm': NoPermission('/b'),
    'rok': return_ok(2), 'rerr': return_error('bad'),
    'cfg': get_config_value('definitions.answer'), 'missing': get_config_value('nope.x'),
    'definition': get_definition('answer'), 'root': web_rootpath() is not None,
    'round': password_decode(password_encode('s3cret')),
    'quoted': quote('a b/c'), 'partial': partial(int, base=16)('ff'),
    'visual': visualcoding(),
}
"""


async def test_the_names_behave_as_ahservers(make_site, ahcore_client):
    site = make_site(
        config={"plugins": {"dspy": True}, "definitions": {"answer": 42}, "password_key": "k"},
        files={"wwwroot/names.dspy": SCRIPT, "wwwroot/resp.dspy": "return json_response({'a': 1}, status=201)"},
    )
    client = await ahcore_client(site)
    resp = await client.get("/names.dspy")
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "ok": {"status": "OK", "data": [1]},
        "need": {"status": "need_login", "data": "/a"},
        "noperm": {"status": "no_permission", "data": "/b"},
        "rok": {"status": "ok", "data": 2},
        "rerr": {"status": "error", "data": {"message": "bad"}},
        "cfg": 42,
        "missing": None,
        "definition": 42,
        "root": True,
        "round": "s3cret",
        "quoted": "a%20b/c",
        "partial": 255,
        "visual": None,
    }
    made = await client.get("/resp.dspy")
    assert made.status == 201 and await made.json() == {"a": 1}


# ---------------------------------------------------------------- the names added last
#
# Each name of 1.2.0's namespace that was still "not provided", driven from a
# .dspy script over HTTP as a site would use it.


FILES_CONFIG = {
    "website": {
        "paths": [["$[workdir]$/wwwroot", ""]],
        "processors": [[".dspy", "dspy"]],
        "cookie_secret": "x" * 32,
        "startswiths": [{"leading": "/idfile", "registerfunction": "idfile"}],
    },
    "filesroot": "$[workdir]$/files",
    "uploads": {"max_file_size": 1000},
    "logger": {"name": "mysite", "levelname": "debug"},
    "plugins": {"dspy": True},
}

ADDED = {
    "wwwroot/helpers.dspy": (
        "clientinfo('seen ' + params_kw.who)\n"
        "return {'quoted': quotedstr('say \"hi\"\\nbye'),\n"
        "        'paramified': paramify({'a': '${x}$', 'b': ['${y.z}$ and ${x}$'], 'c': '${nope}$'},\n"
        "                               {'x': 1, 'y': {'z': 'deep'}}),\n"
        "        'loop': get_loop_type(), 'fileno': current_fileno(), 'baseurl': get_baseurl(),\n"
        "        'png': hex2base64('0x68656c6c6f', 'png'), 'plain': hex2base64('68656c6c6f', 'txt'),\n"
        "        'app': app is request.app, 'real': ref_real_path}\n"
    ),
    "wwwroot/openai.dspy": "return {'400': openai_400, '401': openai_401, '403': openai_403,\n"
    "        '429': openai_429}[params_kw.status]()\n",
    "wwwroot/bg.dspy": (
        "async def work(name, text='done'):\n"
        "    await async_sleep(0)\n"
        "    open(file_realpath(name), 'w').write(text)\n"
        "async def fail():\n"
        "    raise ValueError('background failure')\n"
        "background_reco(work, 'bg.txt', text=params_kw.text)\n"
        "background_reco(fail)\n"
        "return 'started'\n"
    ),
    "wwwroot/send.dspy": (
        "if params_kw.download:\n"
        "    return await file_download(request, params_kw.path)\n"
        "return await file_response(request, params_kw.path)\n"
    ),
    "wwwroot/real.dspy": "return {'path': realpath(params_kw.p), 'same': realpath(params_kw.p) == file_realpath(params_kw.p)}\n",
    "wwwroot/pathdl.dspy": "return await path_download(request, params_kw)\n",
    "wwwroot/public/doc.txt": "public text",
    "wwwroot/public/.hidden": "dot file",
    "wwwroot/public/r\u00e9s\"um\u00e9\r\n.txt": "odd name",
    "files/2024/01/01/stored.txt": "stored text",
    "files/.secret": "dot file in filesroot",
    "files/2024/01/01/page.html": "<script>document.title = document.cookie</script>",
    "wwwroot/public/own.html": "<p>the site's own page</p>",
    "wwwroot/storage.dspy": (
        "fs = FileStorage()\n"
        "p = await fs.save('note.txt', 'hello storage')\n"
        "real = fs.realPath(p)\n"
        "chunks = iter([b'ab', b'cd', b''])\n"
        "async def read():\n"
        "    return next(chunks)\n"
        "q = await fs.save('x.bin', read)\n"
        "b = fs.save_base64_file('data:image/png;base64,aGVsbG8=')\n"
        "part = b''\n"
        "async for c in fs.streaming_read(request, p, 4):\n"
        "    part += c\n"
        "streamed = open(fs.realPath(q), 'rb').read().decode()\n"
        "fs.remove(q)\n"
        "try:\n"
        "    open(fs.realPath(q))\n"
        "    removed = False\n"
        "except FileNotFoundError:\n"
        "    removed = True\n"
        "return {'p': p, 'webpath': fs.webpath(real) == p, 'text': open(real).read(),\n"
        "        'streamed': streamed, 'removed': removed,\n"
        "        'b64': open(b, 'rb').read().decode(), 'b64suffix': b.endswith('.png'),\n"
        "        'part': part.decode(), 'outside': fs.webpath('/etc/passwd')}\n"
    ),
    "wwwroot/storage_escape.dspy": "return FileStorage().realPath(params_kw.path)\n",
    "wwwroot/ranged.dspy": (
        "fs = FileStorage()\n"
        "out = b''\n"
        "async for c in fs.streaming_read(request, '/2024/01/01/stored.txt'):\n"
        "    out += c\n"
        "return out.decode()\n"
    ),
    "wwwroot/media.dspy": (
        "return {'url': await b64media2url(request, params_kw.media),\n"
        "        'norequest': await b64media2url(None, 'a b.png')}\n"
    ),
    "wwwroot/fetch.dspy": "return await downloadfile2url(request, params_kw.url)\n",
    "wwwroot/http.dspy": (
        "hc = HttpClient()\n"
        "text = await hc.request(params_kw.base + '/text')\n"
        "data = await hc.request(params_kw.base + '/json', response_type=HttpClient.RESPONSE_JSON)\n"
        "raw = await hc.request(params_kw.base + '/json', method='POST', jd={'n': 1},\n"
        "                       response_type=HttpClient.RESPONSE_BIN)\n"
        "streamed = b''\n"
        "async for chunk in hc(params_kw.base + '/text'):\n"
        "    streamed += chunk\n"
        "try:\n"
        "    await hc.request(params_kw.base + '/missing')\n"
        "    status = None\n"
        "except Exception as e:\n"
        "    status = e.code\n"
        "shc = StreamHttpClient()\n"
        "whole = await shc.request('GET', params_kw.base + '/text')\n"
        "parts = [c async for c in shc('POST', params_kw.base + '/json', json={'n': 2})]\n"
        "same = hc._session is shc._session is HttpClient()._session\n"
        "await hc.close()\n"
        "return {'text': text, 'json': data, 'raw': raw.decode(), 'streamed': streamed.decode(),\n"
        "        'status': status, 'whole': whole.decode(), 'parts': b''.join(parts).decode(),\n"
        "        'shared': same, 'no_cookies': len(hc._session.cookie_jar) == 0}\n"
    ),
    "wwwroot/login.dspy": "await remember_user(params_kw.user, 'Name', 'org7')\nreturn 'ok'\n",
    "wwwroot/logout.dspy": "await forget_user()\nreturn 'ok'\n",
    "wwwroot/who.dspy": (
        "return {'user': user, 'username': await get_username(), 'info': await get_userinfo()}\n"
    ),
    "wwwroot/setv.dspy": "await session_setvalue(params_kw.k, params_kw.v)\nreturn 'ok'\n",
    "wwwroot/getv.dspy": (
        "s = await get_session()\n"
        "return {'v': await session_getvalue(params_kw.k, 'dflt'), 'all': dict(s)}\n"
    ),
    "wwwroot/sess.dspy": (
        "s = await get_session()\n"
        "s['cart'] = [1, 2]\n"
        "s['n'] = s.get('n', 0) + 1\n"
        "del s['cart']\n"
        "return dict(s)\n"
    ),
    "wwwroot/setbad.dspy": (
        "await session_setvalue('ok', 1)\n"
        "try:\n"
        "    await session_setvalue('big', 'x' * 5000)\n"
        "except ValueError as e:\n"
        "    big = str(e)\n"
        "try:\n"
        "    await session_setvalue('obj', object())\n"
        "except ValueError as e:\n"
        "    obj = str(e)\n"
        "return {'big': big, 'obj': obj, 'kept': dict(await get_session())}\n"
    ),
}


@pytest.fixture
async def added(make_site, ahcore_client):
    return await ahcore_client(make_site(config=FILES_CONFIG, files=ADDED))


async def test_small_helpers_behave_as_ahservers(added, monkeypatch, caplog):
    monkeypatch.setenv("BASEURL", "https://example.org/app")
    caplog.set_level(1, logger="mysite")
    resp = await added.get("/helpers.dspy?who=ann")
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    assert got["quoted"] == 'say \\"hi\\"\\nbye'
    # paramify looks names up, dotted paths too; an unknown name becomes '' (as ahserver).
    assert got["paramified"] == {"a": 1, "b": ["deep and 1"], "c": ""}
    assert "Loop" in got["loop"]
    assert isinstance(got["fileno"], int) and got["fileno"] > 2
    assert got["baseurl"] == "https://example.org/app"
    assert got["png"] == "data:image/png;base64," + base64.b64encode(b"hello").decode()
    assert got["plain"] == "aGVsbG8="
    assert got["app"] is True
    assert got["real"].endswith("/wwwroot/helpers.dspy")
    seen = [r for r in caplog.records if r.name == "mysite" and r.getMessage() == "seen ann"]
    assert seen and seen[0].levelno < logging.DEBUG  # clientinfo: below debug, as in appPublic


async def test_current_fileno_is_the_next_descriptor_and_writes_nothing(added, tmp_path):
    before = sorted(p.name for p in tmp_path.rglob("*"))
    fileno = (await (await added.get("/helpers.dspy?who=x")).json())["fileno"]
    with open(__file__) as f:
        assert f.fileno() == fileno
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


async def test_background_reco_runs_the_task_and_logs_its_failure(added, make_site, caplog):
    resp = await added.get("/bg.dspy?text=written+later")
    assert await resp.text() == "started"
    written = get_site(added.server.app).uploads.root / "bg.txt"
    for _ in range(200):
        failed = any("background_reco task failed" in r.getMessage() for r in caplog.records)
        if failed and written.exists():
            break
        await asyncio.sleep(0.01)
    assert written.read_text() == "written later"
    assert any(
        "background_reco task failed" in r.getMessage() and r.exc_info and r.exc_info[0] is ValueError
        for r in caplog.records
    )


async def test_file_response_sends_site_files_and_refuses_the_rest(added):
    resp = await added.get("/send.dspy", params={"path": "wwwroot/public/doc.txt"})
    assert resp.status == 200 and await resp.text() == "public text"
    assert "Content-Disposition" not in resp.headers
    resp = await added.get("/send.dspy", params={"path": "files/2024/01/01/stored.txt", "download": "1"})
    assert await resp.text() == "stored text"
    assert resp.headers["Content-Disposition"] == (
        "attachment; filename=\"stored.txt\"; filename*=utf-8''stored.txt"
    )
    refused = [
        "/etc/passwd",  # outside the site
        "conf/config.json",  # the config
        "wwwroot/../conf/config.json",  # ..
        "wwwroot/public/../../conf/config.json",
        "wwwroot/send.dspy",  # a script's source
        "wwwroot/public/.hidden",  # a dot file
        "files/.secret",
        "files/../conf/config.json",
    ]
    for path in refused:
        resp = await added.get("/send.dspy", params={"path": path})
        assert resp.status == 403, path
        body = await resp.text()
        assert "cookie_secret" not in body and "root:" not in body and "dot file" not in body
    assert (await added.get("/send.dspy", params={"path": "files/none.txt"})).status == 404


async def test_a_download_name_cannot_add_a_header(added):
    odd = "wwwroot/public/r\u00e9s\"um\u00e9\r\n.txt"
    resp = await added.get("/send.dspy", params={"path": odd, "download": "1"})
    assert resp.status == 200 and await resp.text() == "odd name"
    value = resp.headers["Content-Disposition"]
    assert "\r" not in value and "\n" not in value
    assert value == (
        "attachment; filename=\"r_s\\\"um___.txt\"; "
        "filename*=utf-8''r%C3%A9s%22um%C3%A9__.txt"
    )
    assert list(resp.headers.keys()).count("Content-Disposition") == 1


async def test_a_stored_upload_is_sent_sandboxed_and_a_site_file_is_not(added):
    # An upload may be HTML someone else wrote: sent back inline, it must not
    # run as the site (Content-Security-Policy: sandbox), by every route.
    for resp in (
        await added.get("/idfile", params={"path": "/2024/01/01/page.html"}),
        await added.get("/pathdl.dspy", params={"path": "/2024/01/01/page.html"}),
        await added.get("/send.dspy", params={"path": "files/2024/01/01/page.html"}),
    ):
        assert resp.status == 200 and "<script>" in await resp.text()
        assert resp.headers["Content-Security-Policy"] == "sandbox", resp.url
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    own = await added.get("/send.dspy", params={"path": "wwwroot/public/own.html"})
    assert own.status == 200 and "Content-Security-Policy" not in own.headers


async def test_realpath_is_a_path_under_filesroot_as_in_ahserver(added):
    site = get_site(added.app)
    resp = await added.get("/real.dspy", params={"p": "/2024/01/01/stored.txt"})
    got = await resp.json()
    assert got["same"] is True
    assert got["path"] == str(site.workdir / "files" / "2024" / "01" / "01" / "stored.txt")
    assert (await added.get("/real.dspy", params={"p": "../conf/config.json"})).status == 400


async def test_path_download_sends_stored_uploads_only(added):
    resp = await added.get("/pathdl.dspy", params={"path": "/2024/01/01/stored.txt", "download": "1"})
    assert await resp.text() == "stored text"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="stored.txt"')
    assert (await added.get("/pathdl.dspy", params={"path": "../conf/config.json"})).status == 400
    assert (await added.get("/pathdl.dspy", params={"path": "2024/none.txt"})).status == 404


async def test_file_storage_keeps_to_filesroot(added):
    resp = await added.get("/storage.dspy")
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    assert got["p"].startswith("/") and got["p"].endswith(".txt") and "note" not in got["p"]
    assert got["webpath"] is True and got["text"] == "hello storage"
    assert got["streamed"] == "abcd" and got["removed"] is True
    assert got["b64"] == "hello" and got["b64suffix"] is True
    assert got["part"] == "hello storage"
    assert got["outside"] is None
    for path in ("../conf/config.json", "/../../etc/passwd"):
        assert (await added.get("/storage_escape.dspy", params={"path": path})).status == 400, path


async def test_file_storage_streaming_read_honours_range(added):
    resp = await added.get("/ranged.dspy", headers={"Range": "bytes=7-10"})
    assert await resp.text() == "text"
    assert await (await added.get("/ranged.dspy")).text() == "stored text"


async def test_b64media2url_stores_a_data_url_and_idfile_sends_it(added, monkeypatch):
    monkeypatch.delenv("BASEURL", raising=False)
    media = "data:image/png;base64," + base64.b64encode(b"\x89PNG pixels").decode()
    got = await (await added.post("/media.dspy", data={"media": media})).json()
    origin = str(added.make_url("")).rstrip("/")
    assert got["url"].startswith(origin + "/idfile?path=/") and got["url"].endswith(".png")
    assert got["norequest"] == "/idfile?path=a%20b.png"
    back = await added.get(got["url"][len(origin) :])
    assert back.status == 200 and await back.read() == b"\x89PNG pixels"
    same = await (await added.post("/media.dspy", data={"media": "https://cdn.example/x.png"})).json()
    assert same["url"] == "https://cdn.example/x.png"
    assert (await (await added.post("/media.dspy", data={"media": "x" * 8001})).json())["url"] == ""
    # Bigger than uploads.max_file_size: 413, nothing stored.
    big = "data:image/png;base64," + base64.b64encode(b"x" * 2000).decode()
    assert (await added.post("/media.dspy", data={"media": big})).status == 413


@pytest.fixture
async def upstream(aiohttp_server):
    async def text(request: web.Request) -> web.Response:
        return web.Response(text="upstream text", headers={"Set-Cookie": "track=1"})

    async def data(request: web.Request) -> web.Response:
        body = await request.json() if request.method == "POST" else None
        return web.json_response({"got": body})

    async def pic(request: web.Request) -> web.Response:
        return web.Response(body=b"picture bytes", content_type="image/png")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    app = web.Application()
    app.router.add_get("/text", text)
    app.router.add_route("*", "/json", data)
    app.router.add_get("/media/pic.png", pic)
    app.router.add_get("/big", big)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def test_downloadfile2url_fetches_into_filesroot(added, upstream):
    resp = await added.get("/fetch.dspy", params={"url": upstream + "/media/pic.png?v=1"})
    assert resp.status == 200, await resp.text()
    url = await resp.text()
    origin = str(added.make_url("")).rstrip("/")
    assert url.startswith(origin + "/idfile?path=/") and url.endswith(".png")
    back = await added.get(url[len(origin) :])
    assert await back.read() == b"picture bytes"
    assert (await added.get("/fetch.dspy", params={"url": upstream + "/big"})).status == 413
    assert (await added.get("/fetch.dspy", params={"url": upstream + "/missing"})).status == 500


async def test_http_clients_share_the_apps_session_and_keep_no_cookies(added, upstream):
    resp = await added.get("/http.dspy", params={"base": upstream})
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "text": "upstream text",
        "json": {"got": None},
        "raw": '{"got": {"n": 1}}',
        "streamed": "upstream text",
        "status": 404,
        "whole": "upstream text",
        "parts": '{"got": {"n": 2}}',
        "shared": True,
        "no_cookies": True,
    }
    from ahcore.outbound import OUTBOUND

    outbound = added.server.app[OUTBOUND]
    session = outbound.session()
    await added.close()
    assert session.closed  # closed with the application


async def test_user_get_username_and_get_userinfo(added):
    anonymous = {"user": None, "username": None, "info": {}}
    assert await (await added.get("/who.dspy")).json() == anonymous
    await added.post("/login.dspy", data={"user": "u1"})
    assert await (await added.get("/who.dspy")).json() == {
        "user": "u1:Name:org7",
        "username": "Name",
        "info": {"userid": "u1", "username": "Name", "userorgid": "org7"},
    }
    await added.post("/logout.dspy")
    assert await (await added.get("/who.dspy")).json() == anonymous


async def test_session_values_persist_between_requests(added):
    assert await (await added.get("/getv.dspy?k=a")).json() == {"v": "dflt", "all": {}}
    assert (await added.post("/setv.dspy", data={"k": "a", "v": "apple"})).status == 200
    assert await (await added.get("/getv.dspy?k=a")).json() == {"v": "apple", "all": {"a": "apple"}}
    assert await (await added.get("/sess.dspy")).json() == {"a": "apple", "n": 1}
    assert await (await added.get("/sess.dspy")).json() == {"a": "apple", "n": 2}
    # The cookie is encrypted: the value is not readable in it.
    cookie = added.session.cookie_jar.filter_cookies(added.make_url("/"))["AHCORE_SESSION"].value
    assert "apple" not in cookie


async def test_session_values_are_json_and_bounded(added):
    got = await (await added.get("/setbad.dspy")).json()
    assert "limit is 2048" in got["big"]
    assert "JSON" in got["obj"]
    assert got["kept"] == {"ok": 1}


async def test_the_largest_session_values_still_fit_a_cookie(added):
    await added.post("/login.dspy", data={"user": "u" * 100})
    text = "\u4e2d" * 330  # JSON-escaped as the storage writes it: 6 bytes each
    assert (await added.post("/setv.dspy", data={"k": "big", "v": text})).status == 200
    cookie = added.session.cookie_jar.filter_cookies(added.make_url("/"))["AHCORE_SESSION"]
    assert len(cookie.OutputString()) < 4096  # what browsers keep
    assert (await (await added.get("/getv.dspy?k=big")).json())["v"] == text
    too_big = await added.post("/setv.dspy", data={"k": "big", "v": text + "\u4e2d" * 20})
    assert too_big.status == 500  # the script's ValueError; the old value is kept
    assert (await (await added.get("/getv.dspy?k=big")).json())["v"] == text


async def test_session_values_belong_to_one_login(added):
    await added.post("/setv.dspy", data={"k": "before", "v": "login"})
    await added.post("/login.dspy", data={"user": "u1"})
    # A login starts a fresh session: values set before it are gone (no fixation).
    assert (await (await added.get("/getv.dspy?k=before")).json())["all"] == {}
    await added.post("/setv.dspy", data={"k": "secret", "v": "s1"})
    copied = added.session.cookie_jar.filter_cookies(added.make_url("/"))["AHCORE_SESSION"].value
    await added.post("/logout.dspy")
    assert (await (await added.get("/getv.dspy?k=secret")).json())["v"] == "dflt"
    # A copy of the cookie taken before logout no longer shows the login's values.
    added.session.cookie_jar.clear()
    replay = await added.get("/getv.dspy?k=secret", headers={"Cookie": f"AHCORE_SESSION={copied}"})
    assert (await replay.json())["v"] == "dflt"


@pytest.mark.parametrize(
    "status, code",
    [("400", "invalidparameters"), ("401", "invalid_api_key"), ("403", "model_not_found"),
     ("429", "insufficient_quota")],
)  # fmt: skip
async def test_openai_errors_answer_as_openai_does(added, status, code):
    resp = await added.get("/openai.dspy", params={"status": status})
    assert resp.status == int(status)
    error = (await resp.json())["error"]
    assert error["code"] == code and error["param"] is None and error["message"] and error["type"]


async def test_session_values_live_in_redis_with_redis_sessions(make_site, ahcore_client):
    import copy
    import socket

    from .conftest import require_services

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError as exc:
        if require_services():
            pytest.fail(f"Redis is required (AHCORE_REQUIRE_SERVICES=1) but unreachable: {exc}")
        pytest.skip(f"Redis not reachable on 127.0.0.1:6379: {exc}")
    config = copy.deepcopy(FILES_CONFIG)
    config["website"]["session_redis"] = {"url": "redis://127.0.0.1:6379/0"}
    client = await ahcore_client(make_site(config=config, files=ADDED))
    big = "x" * 10_000  # over the cookie limit, within Redis's
    assert (await client.post("/setv.dspy", data={"k": "big", "v": big})).status == 200
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["AHCORE_SESSION"].value
    assert len(cookie) < 100  # only an id: the values are in Redis
    assert (await (await client.get("/getv.dspy?k=big")).json())["v"] == big


async def test_file_response_keeps_to_the_root_when_links_are_not_followed(make_site, ahcore_client, tmp_path):
    import copy
    import os

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside the site")
    for follow in (True, False):
        config = copy.deepcopy(FILES_CONFIG)
        config["website"]["follow_symlinks"] = follow
        site = make_site(config=config, files=ADDED)
        os.symlink(outside, site / "wwwroot" / "linked")
        client = await ahcore_client(site)
        resp = await client.get("/send.dspy", params={"path": "wwwroot/linked/secret.txt"})
        # A link the site's owner placed is followed as serving follows it, unless confined.
        assert resp.status == (200 if follow else 403), follow
        # Spelling the target itself is never allowed.
        direct = await client.get("/send.dspy", params={"path": str(outside / "secret.txt")})
        assert direct.status == 403


async def test_file_response_with_a_relative_work_directory(make_site, ahcore_client, monkeypatch):
    site = make_site(config=FILES_CONFIG, files=ADDED)
    monkeypatch.chdir(site.parent)
    client = await ahcore_client(site.name)  # as `ahcore serve -w site0`
    resp = await client.get("/send.dspy", params={"path": "files/2024/01/01/stored.txt"})
    assert resp.status == 200 and await resp.text() == "stored text"
    assert (await client.get("/send.dspy", params={"path": "conf/config.json"})).status == 403
