"""The names of ahserver 1.2.0 that real scripts call (SPEC §15), exercised from .dspy scripts."""

from __future__ import annotations

import json
import logging
import re

import pytest

from ahcore.api import get_site

pytest.importorskip("ahcore_dspy")

CONFIG = {
    "website": {
        "paths": [["$[workdir]$/wwwroot", ""]],
        "processors": [[".dspy", "dspy"]],
        "cookie_secret": "x" * 32,
    },
    "logger": {"name": "mysite", "levelname": "debug"},
    "password_key": "mykey",
    "plugins": {"dspy": True},
}

SCRIPTS = {
    "wwwroot/log.dspy": (
        "debug('d ' + params_kw.who)\n"
        "info('i', 1, 2)\n"
        "warning('w')\n"
        "error('e')\n"
        "critical('c')\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    exception('boom')\n"
        "exception('no exception being handled')\n"
        "return 'ok'\n"
    ),
    "wwwroot/login.dspy": (
        "await remember_user(params_kw.user, 'Name', params_kw.org)\nreturn {'ok': True}\n"
    ),
    "wwwroot/org.dspy": "return {'org': await get_userorgid()}\n",
    "wwwroot/logout.dspy": "await forget_user()\nreturn {'ok': True}\n",
    "wwwroot/params.dspy": (
        "ns = await request2ns()\n"
        "ns['page'] = 'changed'\n"  # a fresh dict: params_kw keeps its value
        "kw = request._run_ns.params_kw\n"
        "return {'kw': kw, 'types': {k: type(v).__name__ for k, v in kw.items()},\n"
        "        'same': kw is params_kw, 'missing': kw.no_such_name,\n"
        "        'run_ns_missing': request._run_ns.no_such_name,\n"
        "        'request2ns_page': ns['page']}\n"
    ),
    "wwwroot/caller.dspy": "return await path_call('callee.dspy', page='9')\n",
    "wwwroot/callee.dspy": "return {'kw': params_kw, 'ns': await request2ns()}\n",
    "wwwroot/misc.dspy": (
        "return {\n"
        "  'pw': password_encode('secret'),\n"
        "  'u': uObject({b'k': [b'v', 'w', 1]}),\n"
        "  'ts': timestampstr(),\n"
        "  'err': Error(),\n"
        "  'err2': Error('E1', 'bad thing'),\n"
        "  'where': DBFilter(default_filterjson(['a', 'b'], {'a': 1, 'x': 2})).gen({'a': 1}),\n"
        "}\n"
    ),
    "wwwroot/files.dspy": (
        "with openfile('/data/note.txt') as f:\n"
        "    text = f.read()\n"
        "with openfile('/data/out.txt', 'w') as f:\n"
        "    f.write('written')\n"
        "rows = folderInfo(abspath('/data/note.txt').rsplit('/', 2)[0], '/data')\n"
        "op = uriop()\n"
        "return {'text': text, 'names': [r['name'] for r in rows],\n"
        "        'uriop': op.read('/data/out.txt'), 'list': op.fileList('/data')['total']}\n"
    ),
    "wwwroot/escape.dspy": "return openfile(params_kw.path).read()\n",
    "wwwroot/data/note.txt": "a note",
    "wwwroot/run_ns.dspy": (
        "ns = request._run_ns\n"
        "return {'same': ns is globals(), 'item': ns['configValue'] is configValue,\n"
        "        'attr': ns.configValue is configValue, 'get': ns.get('get_sor_context') is not None,\n"
        "        'in': 'Success' in ns, 'full': 'Success' in ns.copy(), 'user': ns.user}\n"
    ),
    "wwwroot/serverenv.dspy": (
        "return {'workdir': workdir, 'port': port, 'css': cssfiles(), 'js': jsfiles()}\n"
    ),
    "wwwroot/site.css": "",
    "wwwroot/css/more.css": "",
    "wwwroot/css/deeper/not-listed.css": "",
    "wwwroot/.hidden.css": "",
    "wwwroot/bricks/bricks.css": "",
    "wwwroot/js/app.js": "",
}


@pytest.fixture
async def client(make_site, ahcore_client):
    return await ahcore_client(make_site(config=CONFIG, files=SCRIPTS))


async def test_serverenv_names_workdir_port_and_file_lists(client) -> None:
    # ahserver's ConfiguredServer put workdir, cssfiles and jsfiles in its
    # ServerEnv (get_filetype_files: each root's files, one folder down for
    # the top root, /bricks left out); port is website.port.
    data = await (await client.get("/serverenv.dspy")).json()
    assert data["workdir"] == str(get_site(client.server.app).workdir)
    assert data["port"] == 8080
    assert data["css"] == ["/css/more.css", "/site.css"]
    assert data["js"] == ["/js/app.js"]


async def test_log_functions_write_to_the_site_logger(client, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="mysite")
    r = await client.get("/log.dspy?who=ann")
    assert r.status == 200
    records = [r for r in caplog.records if r.name == "mysite"]
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("DEBUG", "d ann"),
        ("INFO", "i 1 2"),
        ("WARNING", "w"),
        ("ERROR", "e"),
        ("CRITICAL", "c"),
        ("ERROR", "boom"),
        ("ERROR", "no exception being handled"),
    ]
    # The record points at the script's own line, for the log's file:line.
    assert records[0].pathname.endswith("log.dspy") and records[0].lineno == 1
    assert records[5].exc_info is not None and records[5].exc_info[0] is ZeroDivisionError
    assert not records[6].exc_info


async def test_log_level_of_the_logger_applies(client, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="mysite")
    await client.get("/log.dspy?who=ann")
    levels = {r.levelname for r in caplog.records if r.name == "mysite"}
    assert "DEBUG" not in levels and "INFO" not in levels and "WARNING" in levels


async def test_get_userorgid(client) -> None:
    assert await (await client.get("/org.dspy")).json() == {"org": None}
    await client.post("/login.dspy", data={"user": "u1", "org": "org7"})
    assert await (await client.get("/org.dspy")).json() == {"org": "org7"}
    await client.post("/logout.dspy")
    assert await (await client.get("/org.dspy")).json() == {"org": None}


async def test_get_userorgid_is_text_as_in_ahserver(client) -> None:
    await client.post("/login.dspy", json={"user": "u1", "org": 42})
    assert await (await client.get("/org.dspy")).json() == {"org": "42"}


@pytest.mark.parametrize(
    "query, expected",
    [
        (
            "page=2&rows=10&_webbricks_=0&_is_mobile=1&_width=+320&_height=%20480%20",
            {"page": 2, "rows": 10, "_webbricks_": 0, "_is_mobile": 1, "_width": 320,
             "_height": 480},
        ),
        # Python's int() decides, as in ahserver: underscores yes, decimals no.
        ("page=1_000&rows=2.5&_width=abc&_height=", {"page": 1000, "rows": "2.5",
                                                       "_width": "abc", "_height": ""}),
        # Other names stay text; a repeated name stays a list.
        ("id=7&pagerows=5&page=1&page=2", {"id": "7", "pagerows": "5", "page": ["1", "2"]}),
    ],
)  # fmt: skip
async def test_paging_and_bricks_parameters_arrive_as_ints(client, query, expected) -> None:
    data = await (await client.get("/params.dspy?" + query)).json()
    assert data["kw"] == expected
    assert data["same"] is True
    assert data["missing"] is None and data["run_ns_missing"] is None


async def test_ints_from_forms_and_json_bodies(client) -> None:
    data = await (await client.post("/params.dspy", data={"page": "3", "q": "5"})).json()
    assert data["kw"] == {"page": 3, "q": "5"}
    data = await (await client.post("/params.dspy", json={"rows": "4", "page": 5.0})).json()
    assert data["kw"] == {"rows": 4, "page": 5.0}  # JSON numbers are left as sent
    assert data["types"] == {"rows": "int", "page": "float"}


async def test_request2ns_is_a_fresh_copy_of_the_requests_parameters(client) -> None:
    data = await (await client.get("/params.dspy?page=2")).json()
    assert data["request2ns_page"] == "changed"
    assert data["kw"]["page"] == 2
    data = await (await client.get("/caller.dspy?page=1&x=y")).json()
    # ahserver's path_call: the callee's params_kw are the request's with the
    # call's over them, and its path (baseProcessor.set_run_env, processorResource.path_call)
    assert data == {"kw": {"page": "9", "x": "y", "path": "/callee.dspy"}, "ns": {"page": 1, "x": "y"}}


async def test_password_encode_matches_ahserver(client, make_site, ahcore_client) -> None:
    data = await (await client.get("/misc.dspy")).json()
    # appPublic.rc4.password('secret', key='mykey'), computed with ahserver's library.
    assert data["pw"] == "QUZVcXg5V1p1STMybG5Ia3MOR5V6Ng=="
    default = {**CONFIG}
    del default["password_key"]
    other = await ahcore_client(make_site(config=default, files=SCRIPTS))
    data2 = await (await other.get("/misc.dspy")).json()
    assert data2["pw"] == "QUZVcXg5V1p1STMybG5Ia0AnzHRALA=="  # ahserver's built-in key


async def test_small_helpers(client) -> None:
    data = await (await client.get("/misc.dspy")).json()
    assert data["u"] == {"k": ["v", "w", 1]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", data["ts"])
    assert data["err"] == {
        "status": "Error",
        "data": {"message": "Error", "errno": "undefined error"},
    }
    assert data["err2"] == {"status": "Error", "data": {"message": "bad thing", "errno": "E1"}}
    assert data["where"] == "a = ${a}$"


async def test_site_files_from_a_script(client) -> None:
    data = await (await client.get("/files.dspy")).json()
    assert data == {"text": "a note", "names": ["note.txt", "out.txt"], "uriop": "written",
                    "list": 2}  # fmt: skip


@pytest.mark.parametrize(
    "path", ["/../conf/config.json", "../conf/config.json", "conf/config.json"]
)
async def test_openfile_outside_the_site_is_a_403(client, path) -> None:
    r = await client.get("/escape.dspy", params={"path": path})
    assert r.status == 403
    text = await r.text()
    assert "cookie_secret" not in text and "not allowed" in text


async def test_openfile_of_a_missing_file_is_a_404(client) -> None:
    r = await client.get("/escape.dspy", params={"path": "/nothing.txt"})
    assert r.status == 404


def test_password_vectors_without_a_server() -> None:
    from ahcore.passwordcodec import password_decode, password_encode

    # appPublic.rc4.password(text, key=...) for these inputs.
    assert password_encode("secret") == "QUZVcXg5V1p1STMybG5Ia0AnzHRALA=="
    assert password_encode("pässwörd 密码") == "QUZVcXg5V1p1STMybG5Ia0OBC3VWL1V3Syplmq24TOL6"
    assert password_encode("abc", "mykey") == "QUZVcXg5V1p1STMybG5Ia2EJRw=="
    assert password_decode(password_encode("pässwörd 密码", "k"), "k") == "pässwörd 密码"
    assert json.dumps(password_encode("")) == '"QUZVcXg5V1p1STMybG5Iaw=="'


async def test_run_ns_answers_every_name_of_the_namespace(client) -> None:
    """``request._run_ns`` is the script's globals and finds the site's names (not copied per request)."""
    resp = await client.get("/run_ns.dspy")
    assert resp.status == 200
    assert await resp.json() == {
        "same": True, "item": True, "attr": True, "get": True, "in": True, "full": True, "user": None,
    }
