"""ahcore.uploads: multipart files streamed to ``filesroot`` under random names, hostile input."""

from __future__ import annotations

import base64
import datetime
import errno
import os
import re
import time
from pathlib import Path

import pytest
from aiohttp import web

from ahcore.uploads import PART_SUFFIX, UploadStore, no_space_is_507

BOUNDARY = "----ahcoreTestBoundary"
MP = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def part(name: str | None, data: bytes, filename: str | None = None, **headers: str) -> bytes:
    disposition = "form-data" + (f'; name="{name}"' if name is not None else "")
    if filename is not None:
        disposition += f'; filename="{filename}"'
    lines = [f"Content-Disposition: {disposition}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return f"--{BOUNDARY}\r\n".encode() + "\r\n".join(lines).encode() + b"\r\n\r\n" + data + b"\r\n"


def multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path) -> UploadStore:
    return UploadStore(tmp_path / "files", max_file_size=1000, max_body_size=5000, max_parts=5)


async def upload(store: UploadStore, make_request, body: bytes, **kw) -> dict:
    params: dict = {}
    await store.read_multipart(make_request("POST", "/up", MP, body=body, **kw), params)
    return params


# ---------------------------------------------------------------- names and paths


def test_new_subpath_is_dated_random_and_keeps_only_a_plain_extension(store) -> None:
    today = datetime.date.today()
    sub = store.new_subpath("Holiday Photo.JPG")
    assert re.fullmatch(rf"{today:%Y/%m/%d}/[0-9a-f]{{32}}\.jpg", sub)
    assert store.new_subpath("a.jpg") != store.new_subpath("a.jpg")
    assert store.new_subpath(r"C:\Users\ann\report.PDF").endswith(".pdf")
    assert store.new_subpath("x.php%00.jpg").endswith(".jpg")  # the stored name is random anyway
    assert store.new_subpath("shell.php.jpg")[-4:] == ".jpg"  # only the last suffix counts
    for hostile in ("x.jpg%00", "x.p h p", "x.ph/p", "noext", "x.", "x.averyveryverylongext", "../../x.s/h"):
        assert re.fullmatch(r"\d{4}/\d\d/\d\d/[0-9a-f]{32}", store.new_subpath(hostile)), hostile
    assert store.new_subpath(".bashrc").count(".") == 0  # a dotfile name is no extension


def test_realpath_never_leaves_the_root(store, tmp_path) -> None:
    store.root.mkdir()
    assert store.realpath("2024/01/01/a.txt") == Path(os.path.realpath(store.root)) / "2024/01/01/a.txt"
    assert store.realpath("/2024/a.txt").is_relative_to(os.path.realpath(store.root))  # leading / stripped
    for hostile in ("../secret", "a/../../secret", "..", "", "/", "\\..\\x/../.."):
        with pytest.raises(web.HTTPBadRequest) as info:
            store.realpath(hostile)
        assert info.value.text == "bad file path: outside the files root\n", hostile
    (tmp_path / "outside.txt").write_text("x")
    (store.root / "link").symlink_to(tmp_path)
    with pytest.raises(web.HTTPBadRequest):
        store.realpath("link/outside.txt")


def test_a_sibling_folder_with_the_roots_name_as_prefix_is_outside(store, tmp_path) -> None:
    store.root.mkdir()
    (tmp_path / "files-evil").mkdir()
    with pytest.raises(web.HTTPBadRequest):
        store.realpath("../files-evil/x")


async def test_save_bytes_writes_the_file_under_a_new_name(store) -> None:
    sub = await store.save_bytes(b"data", "report.csv")
    assert sub.endswith(".csv")
    assert store.realpath(sub).read_bytes() == b"data"
    assert not list(store.root.rglob("*" + PART_SUFFIX))


def test_no_space_is_507_and_other_errors_pass(store) -> None:
    for code in (errno.ENOSPC, errno.EDQUOT):
        with pytest.raises(web.HTTPInsufficientStorage) as info, no_space_is_507(store.root):
            raise OSError(code, "No space left on device", "/secret/path")
        assert "/secret/path" not in info.value.text and "nothing was stored" in info.value.text
    with pytest.raises(PermissionError), no_space_is_507(store.root):
        raise PermissionError(errno.EACCES, "denied")


# ---------------------------------------------------------------- multipart


async def test_fields_and_files(store, make_request) -> None:
    body = multipart(
        part("title", "Grüße".encode()),
        part("tag", b"a"),
        part("tag", b"b"),
        part("doc", b"%PDF-1.4 data", filename="../../etc/Report.PDF", Content_Type="application/pdf"),
    )
    params = await upload(store, make_request, body)
    assert params["title"] == "Grüße"
    assert params["tag"] == ["a", "b"]
    sub = params["doc"]
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/[0-9a-f]{32}\.pdf", sub)
    assert store.realpath(sub).read_bytes() == b"%PDF-1.4 data"
    assert params["_files"]["doc"] == {
        "filename": "Report.PDF",  # the client's name: metadata only, without its folders
        "subpath": sub,
        "size": 13,
        "content_type": "application/pdf",
    }
    assert [p.name for p in stored_files(store.root)] == [Path(sub).name]


async def test_repeated_file_fields_become_a_list(store, make_request) -> None:
    body = multipart(part("f", b"1", filename="a.txt"), part("f", b"2", filename="b.txt"))
    params = await upload(store, make_request, body)
    assert [store.realpath(s).read_bytes() for s in params["f"]] == [b"1", b"2"]


async def test_a_base64_part_is_decoded(store, make_request) -> None:
    data = bytes(range(256))
    body = multipart(
        part("f", base64.b64encode(data), filename="b.bin", Content_Transfer_Encoding="base64"),
        part("t", base64.b64encode(b"text"), Content_Transfer_Encoding="BASE64"),
    )
    params = await upload(store, make_request, body)
    assert store.realpath(params["f"]).read_bytes() == data
    assert params["_files"]["f"]["size"] == 256
    assert params["t"] == "text"


@pytest.mark.parametrize(
    ("encoding", "filename", "fragment"),
    [
        ("quoted-printable", "a.txt", "unsupported Content-Transfer-Encoding 'quoted-printable' in file part 'f'"),
        ("x-uuencode", "a.txt", "unsupported Content-Transfer-Encoding 'x-uuencode' in file part 'f'"),
        ("x-uuencode", None, "unsupported Content-Transfer-Encoding 'x-uuencode' in part 'f'"),
    ],
)
async def test_unsupported_transfer_encodings_are_400_and_store_nothing(
    store, make_request, encoding, filename, fragment
) -> None:
    body = multipart(part("ok", b"1", filename="first.txt"),
                     part("f", b"data", filename=filename, Content_Transfer_Encoding=encoding))
    with pytest.raises(web.HTTPBadRequest) as info:
        await upload(store, make_request, body)
    assert fragment in info.value.text
    assert stored_files(store.root) == []  # the first file was removed again


async def test_invalid_base64_is_400_and_stores_nothing(store, make_request) -> None:
    body = multipart(part("f", b"@@@@not base64!", filename="a.bin", Content_Transfer_Encoding="base64"))
    with pytest.raises(web.HTTPBadRequest) as info:
        await upload(store, make_request, body)
    assert "is not valid base64" in info.value.text
    assert stored_files(store.root) == []


async def test_a_file_over_the_per_file_cap_is_413_and_removed(store, make_request) -> None:
    body = multipart(part("ok", b"x" * 10, filename="small.txt"),
                     part("big", b"x" * 1001, filename="big.txt"))
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await upload(store, make_request, body)
    assert stored_files(store.root) == []


async def test_a_decoded_base64_file_over_the_cap_is_413(store, make_request) -> None:
    body = multipart(part("f", base64.b64encode(b"x" * 1001), filename="a",
                          Content_Transfer_Encoding="base64"))
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await upload(store, make_request, body)
    assert stored_files(store.root) == []


async def test_files_each_under_the_cap_but_over_the_body_budget_are_413(store, make_request) -> None:
    files = [part(f"f{i}", b"x" * 900, filename=f"{i}.txt") for i in range(5)]
    body = multipart(*files, part("t", b"y" * 900))
    store.max_parts = 10
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await upload(store, make_request, body)
    assert stored_files(store.root) == []


async def test_text_fields_count_against_the_body_budget(store, make_request) -> None:
    store.max_parts = 10
    body = multipart(*(part(f"t{i}", b"y" * 900) for i in range(6)))
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await upload(store, make_request, body)


async def test_too_many_parts_is_413_and_stores_nothing(store, make_request) -> None:
    body = multipart(*(part(f"f{i}", b"1", filename="a.txt") for i in range(6)))
    with pytest.raises(web.HTTPRequestEntityTooLarge) as info:
        await upload(store, make_request, body)
    assert info.value.text == "413: too many form parts (limit 5)\n"
    assert stored_files(store.root) == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (multipart(part(None, b"x")), "a part has no name"),
        (multipart(part("", b"x")), "a part has no name"),
        (
            f"--{BOUNDARY}\r\nContent-Type: multipart/mixed; boundary=inner\r\n"
            f"Content-Disposition: form-data; name=\"n\"\r\n\r\n--inner\r\n\r\nx\r\n--inner--\r\n"
            f"--{BOUNDARY}--\r\n".encode(),
            "nested multipart",
        ),
        (b"this is not multipart at all", "malformed multipart body"),
    ],
)
async def test_malformed_multipart_is_400(store, make_request, body, fragment) -> None:
    with pytest.raises(web.HTTPBadRequest) as info:
        await upload(store, make_request, body)
    assert fragment in info.value.text


async def test_a_multipart_without_boundary_is_400(store, make_request) -> None:
    request = make_request("POST", "/up", {"Content-Type": "multipart/form-data"}, body=b"x")
    with pytest.raises(web.HTTPBadRequest) as info:
        await store.read_multipart(request, {})
    assert "malformed multipart body" in info.value.text


async def test_a_field_named__files_cannot_break_the_upload(store, make_request) -> None:
    body = multipart(part("_files", b"spoof"), part("f", b"1", filename="a.txt"))
    with pytest.raises(web.HTTPBadRequest) as info:
        await upload(store, make_request, body)
    assert "'_files' is reserved" in (info.value.text or "")
    assert stored_files(store.root) == []


async def test_a_client_gone_mid_upload_leaves_no_file(store, make_request) -> None:
    # The body ends inside a file part: the reader fails, the partial file goes.
    body = part("f", b"x" * 500, filename="a.txt")[:-2]
    with pytest.raises(Exception):  # noqa: B017 - whatever aiohttp raises for a cut body
        await upload(store, make_request, body)
    assert stored_files(store.root) == []


def test_sweep_removes_only_stale_partial_files(store) -> None:
    day = store.root / "2024" / "01" / "01"
    day.mkdir(parents=True)
    (day / "old.bin.part").write_bytes(b"x")
    (day / "new.bin.part").write_bytes(b"x")
    (day / "whole.bin").write_bytes(b"x")
    now = time.time()
    os.utime(day / "old.bin.part", (now - 7200, now - 7200))
    os.utime(day / "whole.bin", (now - 7200, now - 7200))
    assert store.sweep(3600, now=now) == 1
    assert sorted(p.name for p in day.iterdir()) == ["new.bin.part", "whole.bin"]
    assert UploadStore(store.root / "missing", max_file_size=1, max_body_size=1).sweep(0) == 0
