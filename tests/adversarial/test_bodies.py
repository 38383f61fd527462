"""Hostile request bodies: sizes, JSON, multipart and upload names.

Limits are lowered in the site config so the cases stay fast: the same code
paths guard the 10 MiB default.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from advkit import files_under, raw_exchange, request_bytes

from ahcore import hookimpl

MAX_BODY = 64 * 1024
MAX_FILE = 16 * 1024
MAX_PARTS = 5
SUBPATH = re.compile(r"^\d{4}/\d{2}/\d{2}/[0-9a-f]{32}(\.[a-z0-9]{1,9})?$")

ECHO = """\
files = params_kw.get("_files") or {}
return {"params": {k: v for k, v in params_kw.items() if k != "_files"}, "files": files}
"""


@pytest.fixture
def site(make_site) -> Path:
    return make_site(
        config={
            "website": {
                "paths": [["$[workdir]$/wwwroot", ""]],
                "processors": [[".dspy", "dspy"]],
                "client_max_size": MAX_BODY,
                "cookie_secret": "adversarial-bodies-secret-32-bytes",
            },
            "filesroot": "$[workdir]$/files",
            "uploads": {"max_file_size": MAX_FILE, "max_parts": MAX_PARTS},
            "plugins": {"dspy": True},
        },
        files={"wwwroot/echo.dspy": ECHO, "wwwroot/static.txt": "static"},
    )


@pytest.fixture
async def server(site, serve):
    return await serve(site)


def snapshot(site: Path) -> dict[str, bytes]:
    """Every file of the site except the generated session secret."""
    return {
        str(p.relative_to(site)): p.read_bytes()
        for p in site.rglob("*")
        if p.is_file() and p.name != ".session_secret"
    }


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "XbOuNdArYx") -> bytes:
    out = b""
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode("utf-8", "surrogateescape")
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def mp_headers(boundary: str = "XbOuNdArYx") -> dict[str, str]:
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def post(server, body: bytes, headers: dict[str, str], **kw):
    return await raw_exchange(server, request_bytes("POST", "/echo.dspy", body, headers), **kw)


def chunked(body: bytes, size: int = 8192) -> bytes:
    out = b""
    for i in range(0, len(body), size):
        piece = body[i : i + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


# ------------------------------------------------------------------ sizes


async def test_content_length_over_limit_is_413(server, site):
    before = snapshot(site)
    body = json.dumps({"a": "x" * (MAX_BODY * 2)}).encode()
    r = await post(server, body, {"Content-Type": "application/json"})
    assert r.status == 413, r.raw[:300]
    r.assert_clean()
    assert snapshot(site) == before


async def test_huge_announced_length_answered_without_waiting_for_it(server):
    """Content-Length of 1 TB: the server stops at the limit instead of reading on."""
    head = request_bytes("POST", "/echo.dspy", b"", {"Content-Type": "application/json"})
    head = head.replace(b"\r\n\r\n", b"\r\nContent-Length: 1000000000000\r\n\r\n", 1)
    r = await raw_exchange(server, head + b"[" + b"1," * MAX_BODY, timeout=2)
    assert r.status == 413, r.raw[:300]


async def test_chunked_body_over_limit_is_413(server, site):
    before = snapshot(site)
    body = json.dumps({"a": "x" * (MAX_BODY * 2)}).encode()
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    r = await raw_exchange(
        server, request_bytes("POST", "/echo.dspy", chunked(body), headers, content_length=False)
    )
    assert r.status == 413, r.raw[:300]
    r.assert_clean()
    assert snapshot(site) == before


async def test_urlencoded_body_over_limit_is_413(server):
    body = b"a=" + b"x" * (MAX_BODY * 2)
    r = await post(server, body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 413
    r.assert_clean()


async def test_chunked_multipart_file_over_limit_is_413_and_leaves_nothing(server, site):
    body = multipart([("f", "big.bin", b"x" * (MAX_BODY * 2))])
    headers = mp_headers() | {"Transfer-Encoding": "chunked"}
    r = await raw_exchange(
        server, request_bytes("POST", "/echo.dspy", chunked(body), headers, content_length=False)
    )
    assert r.status == 413, r.raw[:300]
    assert files_under(site / "files") == []


async def test_one_file_over_the_per_file_cap_is_413_and_leaves_nothing(server, site):
    body = multipart([("ok", "ok.txt", b"fine"), ("f", "big.bin", b"x" * (MAX_FILE + 1))])
    r = await post(server, body, mp_headers())
    assert r.status == 413, r.raw[:300]
    r.assert_clean()
    assert files_under(site / "files") == []


async def test_text_field_over_the_body_limit_is_413(server, site):
    body = multipart([("t", None, b"y" * (MAX_BODY + 10))])
    r = await post(server, body, mp_headers())
    assert r.status == 413, r.raw[:300]
    assert files_under(site / "files") == []


async def test_many_files_each_under_cap_but_body_over_limit_is_413(server, site):
    piece = b"z" * (MAX_FILE - 10)
    n = MAX_PARTS  # within the part limit, 5 x ~16 KiB > 64 KiB
    assert n * len(piece) > MAX_BODY
    body = multipart([(f"f{i}", f"p{i}.bin", piece) for i in range(n)])
    r = await post(server, body, mp_headers())
    assert r.status == 413, r.status
    assert files_under(site / "files") == []


async def test_too_many_parts_is_413_and_leaves_nothing(server, site):
    before = snapshot(site)
    parts = [(f"f{i}", f"f{i}.txt", b"data") for i in range(MAX_PARTS + 1)]
    r = await post(server, multipart(parts), mp_headers())
    assert r.status == 413, r.raw[:300]
    assert b"too many form parts" in r.body and f"limit {MAX_PARTS}".encode() in r.body
    r.assert_clean()
    assert files_under(site / "files") == []
    assert snapshot(site) == before
    # at the limit the same body is stored
    ok = await post(server, multipart(parts[:MAX_PARTS]), mp_headers())
    assert ok.status == 200 and len(files_under(site / "files")) == MAX_PARTS


async def test_too_many_text_fields_is_413(server, site):
    before = snapshot(site)
    parts = [(f"t{i}", None, b"v") for i in range(MAX_PARTS + 1)]
    r = await post(server, multipart(parts), mp_headers())
    assert r.status == 413, r.raw[:300]
    assert b"too many form parts" in r.body
    assert snapshot(site) == before


# ------------------------------------------------------------------ JSON


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1',  # truncated
        b'{"a": "unterminated',
        b"[1, 2,",
        b'{"a": 1}}',  # trailing garbage
        b'{"a": NaN}',
        b'{"a": "\xff\xfe"}',  # not UTF-8
        b"\xef\xbb\xbf\xff",
        b'{"a": "\\ud800"}',  # lone surrogate escape
        b"[" * 66 + b"1" + b"]" * 66,  # deeper than 64
    ],
    ids=lambda b: repr(b[:20]),
)
async def test_malformed_json_is_400(server, body):
    r = await post(server, body, {"Content-Type": "application/json"})
    assert r.status in (400,), (r.status, r.raw[:300])
    assert b"malformed JSON" in r.body
    r.assert_clean()


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
        b"[" * 30_000 + b"]" * 30_000,
        b"[" * 60_000,  # deep and truncated
    ],
    ids=["objects-5000", "arrays-30000", "truncated-60000"],
)
async def test_deeply_nested_json_is_400(server, body):
    """Deep enough to overflow msgspec's recursion guard (a RecursionError, once a 500)."""
    assert len(body) < MAX_BODY
    r = await post(server, body, {"Content-Type": "application/json"})
    r.assert_clean()
    assert r.status == 400, r.status


@pytest.mark.parametrize(
    "body, value",
    [(b"[1, 2]", [1, 2]), (b"42", 42), (b'"text"', "text"), (b"null", None), (b"true", True)],
)
async def test_a_json_body_that_is_not_an_object_is_kept_under_json_in_params_kw(
    server, site, body, value
):
    """The decision for ``params_kw`` (a script expects no particular shape).

    ahserver's ``dict.update`` of such a value raised a TypeError (a 500), so
    no site relied on it; ahcore keeps the value under ``_json`` for the
    script to read, merging nothing else. Where an object *is* expected (the
    login endpoint, a plugin's ``fields`` mode) it is a 400: see
    ``test_a_plugin_reading_fields_refuses_what_is_not_an_object``.
    """
    before = snapshot(site)
    r = await post(server, body, {"Content-Type": "application/json"})
    assert r.status == 200, r.raw[:300]
    assert json.loads(r.body)["params"] == {"_json": value}
    assert snapshot(site) == before


@pytest.mark.parametrize(
    ("path", "body", "ctype"),
    [
        ("/echo.dspy", b'{"_files": {"f": {"subpath": "2024/01/01/other.txt"}}}', "application/json"),
        ("/echo.dspy", b'{"_json": [1]}', "application/json"),
        ("/echo.dspy", b"_files=x&a=1", "application/x-www-form-urlencoded"),
        ("/echo.dspy", b"_json=1", "application/x-www-form-urlencoded"),
        ("/echo.dspy?_files=x", b"a=1", "application/x-www-form-urlencoded"),
        ("/echo.dspy?_json=1", b"", None),
        ("/echo.dspy?_files=x", multipart([("f", "a.txt", b"data")]), "multipart"),
        ("/echo.dspy", multipart([("_json", None, b"[1]")]), "multipart"),
    ],
)
async def test_the_kernels_own_parameter_names_cannot_be_sent(server, site, path, body, ctype):
    # params_kw._files describes the stored uploads (a script may trust its
    # subpath) and _json a JSON body that is not an object: only the kernel
    # sets them. From any source they are a 400, and nothing is stored.
    before = snapshot(site)
    headers = mp_headers() if ctype == "multipart" else ({"Content-Type": ctype} if ctype else {})
    r = await raw_exchange(server, request_bytes("POST", path, body, headers))
    assert r.status == 400, r.raw[:300]
    assert b"is reserved" in r.body
    assert snapshot(site) == before


async def test_reasonable_json_still_works(server):
    nested = b"[" * 10 + b"1" + b"]" * 10
    r = await post(server, b'{"a": ' + nested + b"}", {"Content-Type": "application/json"})
    assert r.status == 200
    assert json.loads(r.body)["params"]["a"] == json.loads(nested)


# ------------------------------------------------------------------ broken multipart


@pytest.mark.parametrize(
    "ctype, body",
    [
        ("multipart/form-data", multipart([("a", None, b"1")])),  # no boundary parameter
        ("multipart/form-data; boundary=", multipart([("a", None, b"1")])),
        ("multipart/form-data; boundary=OTHER", multipart([("a", "a.txt", b"1")])),
        ("multipart/form-data; boundary=XbOuNdArYx", b"garbage without any boundary"),
        (
            "multipart/form-data; boundary=XbOuNdArYx",
            b"--XbOuNdArYx\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--XbOuNdArYx--\r\n",
        ),
        (
            "multipart/form-data; boundary=XbOuNdArYx",
            b'--XbOuNdArYx\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n'
            b"\r\npartial file without the closing boundary",
        ),
        (
            "multipart/form-data; boundary=XbOuNdArYx",
            b"--XbOuNdArYx\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n"
            b"--inner\r\n\r\nx\r\n--inner--\r\n--XbOuNdArYx--\r\n",
        ),
    ],
    ids=[
        "no-boundary",
        "empty-boundary",
        "wrong-boundary",
        "garbage",
        "no-name",
        "truncated",
        "nested",
    ],
)
async def test_broken_multipart_is_4xx_and_leaves_nothing(server, site, ctype, body):
    before = snapshot(site)
    r = await post(server, body, {"Content-Type": ctype}, timeout=5)
    assert 400 <= r.status < 500, (r.status, r.raw[:300])
    r.assert_clean()
    assert files_under(site / "files") == []
    assert snapshot(site) == before


async def test_truncated_upload_with_half_closed_socket_leaves_nothing(server, site):
    """Content-Length promises more than arrives, then the client stops sending."""
    full = multipart([("f", "a.bin", b"q" * 40_000)])
    payload = request_bytes("POST", "/echo.dspy", full, mp_headers())
    r = await raw_exchange(server, payload[: len(payload) - 20_000], timeout=5, half_close=True)
    assert r.status in (0, 400), r.raw[:300]  # 0: the server just closed
    await asyncio.sleep(0.2)
    assert files_under(site / "files") == []


# ------------------------------------------------------------------ upload names

HOSTILE_NAMES = [
    "../../etc/passwd",
    "../../../../../../tmp/pwned.txt",
    "..\\..\\windows\\win.ini",
    "a\\b.txt",
    "/etc/passwd",
    "C:\\evil.exe",
    "%2e%2e%2f%2e%2e%2fpasswd",
    ".htaccess",
    "x" * 4000 + ".txt",
    "ünï©ødé.pdf",
    "",
]


@pytest.mark.parametrize("filename", HOSTILE_NAMES, ids=lambda n: repr(n[:24]))
async def test_hostile_upload_names_get_random_stored_names_inside_filesroot(
    server, site, tmp_path, filename
):
    content = b"payload-" + filename.encode("utf-8", "replace")[:50]
    boundary = "XbOuNdArYx"
    disp = f'form-data; name="up"; filename="{filename}"'.encode()
    body = (
        f"--{boundary}\r\n".encode()
        + b"Content-Disposition: "
        + disp
        + b"\r\nContent-Type: text/plain\r\n\r\n"
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    r = await post(server, body, mp_headers(boundary))
    assert r.status == 200, (r.status, r.raw[:400])
    data = json.loads(r.body)
    subpath = data["params"]["up"]
    assert SUBPATH.match(subpath), subpath
    info = data["files"]["up"]
    assert info["subpath"] == subpath
    assert info["size"] == len(content)
    assert "/" not in info["filename"] and "\\" not in info["filename"]
    assert len(info["filename"]) <= 255
    stored = files_under(site / "files")
    assert stored == [(site / "files" / subpath)]
    assert stored[0].resolve().is_relative_to((site / "files").resolve())
    assert stored[0].read_bytes() == content
    # Nothing landed anywhere else under the test's temporary tree.
    others = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file()
        and "files" not in p.relative_to(site).parts[:1]
        and p.is_relative_to(site)
        and p.parts[-2] not in ("conf", "wwwroot")
    ]
    assert others == []
    assert not any(p.name in ("passwd", "pwned.txt", "win.ini") for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("filename", ["evil.php\x00.jpg", "new\r\nline.txt", "cr\ronly.txt"])
async def test_control_characters_in_part_headers_are_400(server, site, filename):
    body = multipart([("up", filename, b"data")])
    r = await post(server, body, mp_headers())
    r.assert_clean()
    assert files_under(site / "files") == []
    assert r.status == 400, r.status


async def test_two_uploads_of_the_same_name_get_different_stored_names(server, site):
    body = multipart([("a", "same.txt", b"one"), ("b", "same.txt", b"two")])
    r = await post(server, body, mp_headers())
    assert r.status == 200
    params = json.loads(r.body)["params"]
    assert params["a"] != params["b"]
    assert len(files_under(site / "files")) == 2


async def test_repeated_upload_field_becomes_a_list_of_subpaths(server, site):
    body = multipart([("f", "a.txt", b"one"), ("f", "b.txt", b"two")])
    r = await post(server, body, mp_headers())
    assert r.status == 200
    value = json.loads(r.body)["params"]["f"]
    assert isinstance(value, list) and len(value) == 2
    assert all(SUBPATH.match(v) for v in value)


# ------------------------------------------------------------------ Content-Transfer-Encoding


def encoded_part(name: str, filename: str | None, data: bytes, encoding: str) -> bytes:
    disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (
        f"--XbOuNdArYx\r\nContent-Disposition: {disp}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode() + data + b"\r\n"


def mime_base64(data: bytes) -> bytes:
    """base64 as mail clients write it: lines of 76 characters."""
    import base64

    text = base64.b64encode(data)
    return b"\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))


async def test_a_base64_file_part_is_stored_decoded(server, site):
    data = bytes(range(256)) * 40  # 10 KiB of every byte value, under MAX_FILE
    body = (
        encoded_part("f", "blob.bin", mime_base64(data), "base64")
        + encoded_part("t", None, mime_base64("grüße".encode()), "base64")
        + b"--XbOuNdArYx--\r\n"
    )
    r = await post(server, body, mp_headers())
    assert r.status == 200, r.raw[:300]
    answer = json.loads(r.body)
    assert answer["params"]["t"] == "grüße"
    meta = answer["files"]["f"]
    assert meta["size"] == len(data)
    (stored,) = files_under(site / "files")
    assert stored.read_bytes() == data
    assert str(stored.relative_to(site / "files")) == meta["subpath"]


async def test_a_base64_file_is_bounded_by_its_decoded_size(server, site):
    data = b"\x00" * (MAX_FILE + 1)  # encoded it is 4/3 of that; decoded one byte too many
    body = encoded_part("f", "big.bin", mime_base64(data), "base64") + b"--XbOuNdArYx--\r\n"
    r = await post(server, body, mp_headers())
    assert r.status == 413, r.raw[:300]
    assert files_under(site / "files") == []


@pytest.mark.parametrize(
    "filename, data, encoding, message",
    [
        ("a.bin", b"QUJD" * 10 + b"Q", "base64", b"is not valid base64"),
        (None, b"QUJD" * 10 + b"Q", "base64", b"is not valid base64"),
        ("a.txt", b"caf=C3=A9", "quoted-printable", b"unsupported Content-Transfer-Encoding"),
        ("a.bin", b"begin 644 a\n", "x-uuencode", b"unsupported Content-Transfer-Encoding"),
        (None, b"abc", "x-uuencode", b"unsupported Content-Transfer-Encoding"),
    ],
    ids=["bad-base64-file", "bad-base64-text", "qp-file", "uuencode-file", "uuencode-text"],
)
async def test_an_undecodable_transfer_encoding_is_400_and_stores_nothing(
    server, site, filename, data, encoding, message
):
    before = snapshot(site)
    body = (
        encoded_part("ok", "ok.bin", b"plain bytes", "binary")
        + encoded_part("f", filename, data, encoding)
        + b"--XbOuNdArYx--\r\n"
    )
    r = await post(server, body, mp_headers())
    assert r.status == 400, r.raw[:300]
    assert message in r.body
    r.assert_clean()
    assert files_under(site / "files") == []
    assert snapshot(site) == before


# ------------------------------------------------------------------ a plugin's own reads


class ReaderPlugin:
    """Routes that read their body through ``ahcore.api.read_body``, as plugins must."""

    @hookimpl
    def register_routes(self, app):
        from aiohttp import web

        from ahcore.api import read_body

        async def raw(request):
            data = await read_body(request, "raw")
            return web.json_response({"length": len(data), "head": data[:8].decode("latin-1")})

        async def fields(request):
            data = await read_body(request, "fields")
            return web.json_response(dict(data))

        app.router.add_post("/plugin/raw", raw)
        app.router.add_post("/plugin/fields", fields)


@pytest.fixture
async def reader(make_site, serve):
    site = make_site(
        config={
            "website": {
                "paths": [["$[workdir]$/wwwroot", ""]],
                "client_max_size": MAX_BODY,
                "request_timeout": 1,
                "cookie_secret": "adversarial-bodies-secret-32-bytes",
            },
            "plugins": {"reader": True},
        }
    )
    return await serve(site, extra_plugins={"reader": ReaderPlugin()})


async def test_a_plugin_reading_raw_bytes_gets_the_limits(reader):
    r = await raw_exchange(reader, request_bytes("POST", "/plugin/raw", b"\x00\x01hello"))
    assert r.status == 200 and json.loads(r.body) == {"length": 7, "head": "\x00\x01hello"}
    r = await raw_exchange(reader, request_bytes("POST", "/plugin/raw", b"x" * (MAX_BODY + 1)))
    assert r.status == 413, r.raw[:300]
    # A trickled body: the read deadline (1 s) cuts it long before it is whole.
    conn_reader, writer = await asyncio.open_connection(reader.host, reader.port)
    try:
        writer.write(request_bytes("POST", "/plugin/raw", headers={"Content-Length": "500"}))
        answer = b""
        for _ in range(500):
            writer.write(b"x")
            await writer.drain()
            try:
                answer = await asyncio.wait_for(conn_reader.read(65536), 0.1)
            except asyncio.TimeoutError:
                continue
            break
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]


@pytest.mark.parametrize(
    "body, ctype, status, message",
    [
        (b"[1, 2]", "application/json", 400, b"a JSON object is expected, got an array"),
        (b"42", "application/json", 400, b"a JSON object is expected, got a number"),
        (b'{"a": ', "application/json", 400, b"malformed JSON body"),
        (b"a=1", "text/plain", 415, b"expected a form or a JSON object"),
    ],
)
async def test_a_plugin_reading_fields_refuses_what_is_not_an_object(reader, body, ctype, status, message):
    r = await raw_exchange(
        reader, request_bytes("POST", "/plugin/fields", body, {"Content-Type": ctype})
    )
    assert r.status == status, r.raw[:300]
    assert message in r.body
    r.assert_clean()


async def test_a_plugin_reading_fields_gets_forms_and_objects_but_not_the_query(reader):
    r = await raw_exchange(
        reader,
        request_bytes(
            "POST", "/plugin/fields?q=1", b"a=1&b=2", {"Content-Type": "application/x-www-form-urlencoded"}
        ),
    )
    assert r.status == 200 and json.loads(r.body) == {"a": "1", "b": "2"}
    r = await raw_exchange(
        reader, request_bytes("POST", "/plugin/fields", b'{"a": [1]}', {"Content-Type": "application/json"})
    )
    assert r.status == 200 and json.loads(r.body) == {"a": [1]}
