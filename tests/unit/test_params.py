"""ahcore.params: ``params_kw`` and the one body reader, with hostile bodies."""

from __future__ import annotations

import asyncio
import json
from unittest import mock

import pytest
from aiohttp import streams, web
from aiohttp.test_utils import make_mocked_request

from ahcore.dictobject import DictObject
from ahcore.params import (
    DEFAULT_BODY_TIMEOUT,
    MAX_JSON_DEPTH,
    body_timeout,
    read_body,
    read_params,
)

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_query_string_repeated_names_become_lists(make_request) -> None:
    params = await read_params(make_request("GET", "/p?a=1&b=x&b=y&c="))
    assert params == {"a": "1", "b": ["x", "y"], "c": ""}
    assert isinstance(params, DictObject)


async def test_a_get_body_is_not_read_for_params(make_request) -> None:
    request = make_request("GET", "/p?a=1", JSON, body=b'{"b": 2}')
    assert await read_params(request) == {"a": "1"}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_a_json_object_body_is_merged_with_the_query(make_request, method) -> None:
    request = make_request(method, "/p?q=1&a=from-query", JSON, body=b'{"a": 1, "n": {"x": [1]}}')
    params = await read_params(request)
    assert params == {"a": 1, "n": {"x": [1]}, "q": "1"}  # the body wins over the query


async def test_other_json_values_are_kept_under__json(make_request) -> None:
    for body, value in [(b"[1, 2]", [1, 2]), (b"42", 42), (b'"s"', "s"), (b"null", None)]:
        params = await read_params(make_request("POST", "/p", JSON, body=body))
        assert params == {"_json": value}, body


async def test_vendor_json_types_and_empty_bodies(make_request) -> None:
    vendor = {"Content-Type": "application/vnd.api+json"}
    assert await read_params(make_request("POST", "/p", vendor, body=b'{"a": 1}')) == {"a": 1}
    assert await read_params(make_request("POST", "/p", JSON, body=b"  \n")) == {}


@pytest.mark.parametrize(
    "body", [b"{", b'{"a": }', b"\xff\xfe", b"{'a': 1}", b'{"a": 1} trailing', b"NaN"]
)
async def test_malformed_json_is_400_that_says_so(make_request, body) -> None:
    with pytest.raises(web.HTTPBadRequest) as info:
        await read_params(make_request("POST", "/p", JSON, body=body))
    assert info.value.text.startswith("malformed JSON body")


async def test_json_nested_too_deep_is_400(make_request) -> None:
    ok = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert (await read_params(make_request("POST", "/p", JSON, body=ok)))["_json"]
    for depth in (MAX_JSON_DEPTH + 2, 100_000):
        body = b"[" * depth + b"]" * depth
        with pytest.raises(web.HTTPBadRequest) as info:
            await read_params(make_request("POST", "/p", JSON, body=body))
        assert f"nested deeper than {MAX_JSON_DEPTH} levels" in info.value.text
    deep_object = b'{"a":' * (MAX_JSON_DEPTH + 2) + b"1" + b"}" * (MAX_JSON_DEPTH + 2)
    with pytest.raises(web.HTTPBadRequest):
        await read_params(make_request("POST", "/p", JSON, body=deep_object))


async def test_urlencoded_form(make_request) -> None:
    request = make_request("POST", "/p?x=q", FORM, body=b"a=1&b=2&b=3&x=form&e=%E2%82%AC")
    assert await read_params(request) == {"a": "1", "b": ["2", "3"], "x": "form", "e": "€"}


async def test_multipart_without_an_upload_store_is_415(make_request) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=XX"}
    body = b'--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--XX--\r\n'
    with pytest.raises(web.HTTPUnsupportedMediaType) as info:
        await read_params(make_request("POST", "/p", headers, body=body))
    assert "uploads are not enabled" in info.value.text


async def test_an_unknown_content_type_in_params_mode_is_ignored(make_request) -> None:
    request = make_request("POST", "/p?a=1", {"Content-Type": "text/plain"}, body=b"hello")
    assert await read_params(request) == {"a": "1"}


# ---------------------------------------------------------------- fields mode


async def test_fields_mode_is_the_body_alone(make_request) -> None:
    request = make_request("POST", "/login?user=from-query", JSON, body=b'{"user": "ann"}')
    assert await read_body(request, "fields") == {"user": "ann"}
    form = make_request("POST", "/login?x=1", FORM, body=b"user=bob")
    assert await read_body(form, "fields") == {"user": "bob"}


@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"[1, 2]", "an array"), (b"42", "a number"), (b"1.5", "a number"), (b'"x"', "a string"),
     (b"true", "a boolean"), (b"null", "null")],
)
async def test_fields_mode_refuses_json_that_is_not_an_object(make_request, body, kind) -> None:
    with pytest.raises(web.HTTPBadRequest) as info:
        await read_body(make_request("POST", "/p", JSON, body=body), "fields")
    assert info.value.text == f"a JSON object is expected, got {kind}\n"


async def test_fields_mode_refuses_another_content_type_with_a_body(make_request) -> None:
    with pytest.raises(web.HTTPUnsupportedMediaType) as info:
        await read_body(make_request("POST", "/p", {"Content-Type": "text/csv"}, body=b"a,b"), "fields")
    assert "expected a form or a JSON object, got text/csv" in info.value.text
    # ... but an empty body of any type is just no fields.
    assert await read_body(make_request("POST", "/p", {"Content-Type": "text/csv"}, body=b""), "fields") == {}


# ---------------------------------------------------------------- raw mode and limits


async def test_raw_mode(make_request) -> None:
    assert await read_body(make_request("POST", "/p", body=b"\x00\x01bytes"), "raw") == b"\x00\x01bytes"
    assert await read_body(make_request("POST", "/p"), "raw") == b""


async def test_an_unknown_mode_is_a_programming_error(make_request) -> None:
    with pytest.raises(ValueError, match="unknown mode 'json'"):
        await read_body(make_request("POST", "/p"), "json")  # type: ignore[call-overload]


@pytest.mark.parametrize("mode", ["params", "fields", "raw"])
async def test_a_body_over_client_max_size_is_413_in_every_mode(make_request, mode) -> None:
    body = json.dumps({"a": "x" * 200}).encode()
    request = make_request("POST", "/p", JSON, body=body, client_max_size=100)
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await read_body(request, mode)


def _trickling_request(app=None) -> tuple[web.Request, streams.StreamReader]:
    """A request whose body has started but never ends."""
    payload = streams.StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    payload.feed_data(b'{"a": ')
    request = make_mocked_request(
        "POST", "/p", headers={"Content-Type": "application/json", "Content-Length": "100"},
        payload=payload, app=app,
    )
    return request, payload


@pytest.mark.parametrize("mode", ["params", "fields", "raw"])
async def test_a_body_that_does_not_arrive_in_time_is_408_and_closes(mode) -> None:
    request, _ = _trickling_request()
    with pytest.raises(web.HTTPRequestTimeout) as info:
        await read_body(request, mode, timeout=0.05)
    assert "request body not received within 0.05 s" in info.value.text
    assert info.value.keep_alive is False  # force_close: the trickler loses its connection


async def test_body_timeout_is_the_sites_request_timeout(make_app, make_request) -> None:
    app = make_app({"website": {"request_timeout": 7.5}})
    assert body_timeout(make_request(app=app)) == 7.5
    assert body_timeout(make_request(app=web.Application())) == DEFAULT_BODY_TIMEOUT


async def test_multipart_goes_to_the_upload_store(make_request, tmp_path) -> None:
    from ahcore.uploads import UploadStore

    store = UploadStore(tmp_path / "files", max_file_size=100, max_body_size=1000)
    boundary = "XyZ"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\n"
        f"file body\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\n"
        f"text\r\n--{boundary}--\r\n"
    ).encode()
    request = make_request(
        "POST", "/p?q=1", {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body=body
    )
    params = await read_params(request, store)
    assert params["t"] == "text" and params["q"] == "1"
    assert store.realpath(params["f"]).read_bytes() == b"file body"
    assert params["_files"]["f"]["filename"] == "a.txt"
