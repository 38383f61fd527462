"""ahcore-xlsxds: .xlsxds data sources served from a real site, and data2xlsx."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import os
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from ahcore_xlsxds import data2xlsx
from ahcore_xlsxds.sheet import Descriptor, DescriptorError, _Mismatch, convert

from ahcore.api import Processor, ProcessorSpec, RequestContext, get_site, hookimpl

CONFIG: dict[str, Any] = {
    "website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": [[".xlsxds", "xlsxds"]]},
    "plugins": {"xlsxds": True},
}

# The descriptor format of SPEC §7: six header rows, no name row, data from row 7.
DESCRIPTOR = {
    "xlsxfile": "./data.xlsx",
    "data_from": 7,
    "data_sheet": "Sheet1",
    "label_at": 1,
    "name_at": None,
    "datatype_at": 2,
    "ioattrs_at": 3,
    "listhide_at": 4,
    "inputhide_at": 5,
    "frozen_at": 6,
}

HEADER = [
    ["ID", "Name", "Price", "Born"],
    ["int", "str", "float", "date"],
    ['{"width": 10}', None, "readonly", None],
    [None, "Y", None, 1],
    [1, None, None, None],
    ["x", None, None, None],
]

DATA = [
    [1, "apple", 1.5, datetime.datetime(2024, 1, 2)],
    [2, "pear", 0.75, datetime.datetime(2023, 12, 31)],
    [3, "fig", 3.25, None],
    [4, "kiwi", 2, datetime.datetime(2022, 6, 1)],
    [5.0, "plum", 0.5, datetime.datetime(2021, 3, 4)],
]


def xlsx_bytes(sheets: dict[str, list[list[Any]]]) -> bytes:
    """A workbook with the given sheets, rows appended from row 1."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def site_files(descriptor: dict[str, Any] | None = None, rows: list[list[Any]] | None = None):
    return {
        "wwwroot/data.xlsx": xlsx_bytes({"Sheet1": HEADER + (DATA if rows is None else rows)}),
        "wwwroot/data.xlsxds": json.dumps(descriptor or DESCRIPTOR),
    }


@pytest.fixture
async def client(make_site, ahcore_client):
    return await ahcore_client(make_site(config=CONFIG, files=site_files()))


@pytest.fixture
def count_parses(monkeypatch) -> list[str]:
    """Record every workbook parse (calls to openpyxl.load_workbook by the plugin)."""
    calls: list[str] = []
    real = openpyxl.load_workbook

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(openpyxl, "load_workbook", counting)  # the plugin imports it on first use
    return calls


async def get_json(client, url: str, status: int = 200) -> Any:
    resp = await client.get(url)
    assert resp.status == status, await resp.text()
    return await resp.json()


# ---------------------------------------------------------------- getdata


async def test_getdata_returns_typed_records_named_f1_to_fn(client):
    resp = await client.get("/data.xlsxds")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    records = await resp.json()
    assert records[0] == {"f1": 1, "f2": "apple", "f3": 1.5, "f4": "2024-01-02"}
    assert records[2] == {"f1": 3, "f2": "fig", "f3": 3.25, "f4": None}
    # Declared int: 5.0 in the sheet is served as 5; declared float: 2 as 2.0.
    assert records[4]["f1"] == 5 and isinstance(records[4]["f1"], int)
    assert records[3]["f3"] == 2.0 and isinstance(records[3]["f3"], float)
    assert len(records) == 5
    assert await get_json(client, "/data.xlsxds?action=getdata") == records


async def test_raw_descriptor_is_never_sent(client):
    for url in ("/data.xlsxds", "/data.xlsxds?action=resultFields"):
        body = await (await client.get(url)).text()
        assert "xlsxfile" not in body and "data_from" not in body


async def test_named_fields_and_chosen_sheet(make_site, ahcore_client):
    descriptor = {"xlsxfile": "book.xlsx", "data_sheet": "Data", "label_at": 1, "name_at": 2}
    book = xlsx_bytes(
        {
            "Notes": [["not this sheet"]],
            "Data": [
                ["Code", "Qty", None, "When"],
                ["code", "qty", None, "when"],  # column C has no name: a spacer
                ["A1", 3, "note", datetime.datetime(2024, 5, 6, 7, 8, 9)],
                [None, None, None, None],  # blank rows are skipped
                ["B2", 4, None, None],
            ],
        }
    )
    site = make_site(
        config=CONFIG,
        files={"wwwroot/sub/book.xlsx": book, "wwwroot/sub/d.xlsxds": json.dumps(descriptor)},
    )
    client = await ahcore_client(site)
    assert await get_json(client, "/sub/d.xlsxds") == [
        {"code": "A1", "qty": 3, "when": "2024-05-06T07:08:09"},
        {"code": "B2", "qty": 4, "when": None},
    ]
    fields = await get_json(client, "/sub/d.xlsxds?action=resultFields")
    assert [(f["name"], f["label"], f["type"]) for f in fields] == [
        ("code", "Code", "str"),
        ("qty", "Qty", "int"),
        ("when", "When", "str"),
    ]


async def test_default_sheet_is_the_first(make_site, ahcore_client):
    descriptor = {"xlsxfile": "b.xlsx", "name_at": 1, "data_from": 2}
    book = xlsx_bytes({"First": [["a"], [1]], "Second": [["b"], [2]]})
    site = make_site(
        config=CONFIG, files={"wwwroot/b.xlsx": book, "wwwroot/b.xlsxds": json.dumps(descriptor)}
    )
    client = await ahcore_client(site)
    assert await get_json(client, "/b.xlsxds") == [{"a": 1}]


# ---------------------------------------------------------------- pagingdata


async def test_pagingdata_pages(client):
    answer = await get_json(client, "/data.xlsxds?action=pagingdata&page=2&rows=2")
    assert answer["total"] == 5
    assert [r["f1"] for r in answer["rows"]] == [3, 4]
    answer = await get_json(client, "/data.xlsxds?action=pagingdata&page=3&pagerows=2")
    assert [r["f1"] for r in answer["rows"]] == [5]
    answer = await get_json(client, "/data.xlsxds?action=pagingdata&page=9&rows=2")
    assert answer == {"total": 5, "rows": []}
    # Defaults: page 1 of 80 rows.
    answer = await get_json(client, "/data.xlsxds?action=pagingdata")
    assert len(answer["rows"]) == 5


async def test_pagingdata_sorts(client):
    answer = await get_json(client, "/data.xlsxds?action=pagingdata&sort=f3%20desc")
    assert [r["f3"] for r in answer["rows"]] == [3.25, 2.0, 1.5, 0.75, 0.5]
    answer = await get_json(client, "/data.xlsxds?action=pagingdata&sort=f3%20desc&rows=2&page=2")
    assert [r["f2"] for r in answer["rows"]] == ["apple", "pear"]
    # None sorts last ascending; several keys comma-separated or repeated.
    answer = await get_json(client, "/data.xlsxds?action=pagingdata&sort=f4")
    assert [r["f1"] for r in answer["rows"]] == [5, 4, 2, 1, 3]
    answer = await get_json(client, "/data.xlsxds?action=pagingdata&sort=f4%20desc,f1")
    assert [r["f1"] for r in answer["rows"]][0] == 3
    answer = await get_json(client, "/data.xlsxds?action=pagingdata&sort=f2%20DESC&sort=f1")
    assert [r["f2"] for r in answer["rows"]] == ["plum", "pear", "kiwi", "fig", "apple"]


@pytest.mark.parametrize(
    "sort",
    ["nope", "f1%20sideways", "f1%20desc%20extra", "f1;drop%20table", "f1%20desc,%20bad"],
)
async def test_bad_sort_is_400(client, sort):
    resp = await client.get(f"/data.xlsxds?action=pagingdata&sort={sort}")
    assert resp.status == 400
    assert "sort" in await resp.text()


async def test_rows_are_capped_by_plugin_setting(make_site, ahcore_client):
    config = {**CONFIG, "plugins": {"xlsxds": {"max_rows": 3}}}
    client = await ahcore_client(make_site(config=config, files=site_files()))
    answer = await get_json(client, "/data.xlsxds?action=pagingdata&rows=100000")
    assert answer["total"] == 5 and len(answer["rows"]) == 3
    assert answer["truncated"] is True
    # the default page size (80) is cut by the cap as well
    assert (await get_json(client, "/data.xlsxds?action=pagingdata"))["truncated"] is True
    # pages the cap did not cut say nothing
    answer = await get_json(client, "/data.xlsxds?action=pagingdata&rows=3")
    assert len(answer["rows"]) == 3 and "truncated" not in answer
    answer = await get_json(client, "/data.xlsxds?action=pagingdata&rows=100000&page=2")
    assert [r["f1"] for r in answer["rows"]] == [4, 5] and "truncated" not in answer


async def test_pagingdata_through_path_call_says_when_the_cap_cut_it(make_site, ahcore_client):
    pytest.importorskip("ahcore_dspy")
    config = {
        **CONFIG,
        "website": {**CONFIG["website"], "processors": [[".xlsxds", "xlsxds"], [".dspy", "dspy"]]},
        "plugins": {"xlsxds": {"max_rows": 3}, "dspy": True},
    }
    files = {
        **site_files(),
        "wwwroot/page.dspy": (
            "answer = await path_call('/data.xlsxds', action='pagingdata', rows=params_kw.rows)\n"
            "return {'n': len(answer['rows']), 'truncated': answer.get('truncated', False)}\n"
        ),
    }
    client = await ahcore_client(make_site(config=config, files=files))
    assert await get_json(client, "/page.dspy?rows=9") == {"n": 3, "truncated": True}
    assert await get_json(client, "/page.dspy?rows=2") == {"n": 2, "truncated": False}


@pytest.mark.parametrize(
    "query", ["page=abc", "page=0", "page=-1", "rows=x", "pagerows=1.5", "rows=0"]
)
async def test_bad_page_or_rows_is_400(client, query):
    resp = await client.get(f"/data.xlsxds?action=pagingdata&{query}")
    assert resp.status == 400
    name = query.split("=")[0]
    assert name in await resp.text()


# ---------------------------------------------------------------- resultFields, actions


async def test_result_fields_come_from_the_header_rows(client):
    fields = await get_json(client, "/data.xlsxds?action=resultFields")
    assert [f["name"] for f in fields] == ["f1", "f2", "f3", "f4"]
    first = fields[0]
    assert first == {
        "name": "f1",
        "label": "ID",
        "type": "int",
        "ioattrs": {"width": 10},
        "listhide": False,
        "inputhide": True,
        "frozen": True,
    }
    assert fields[1]["listhide"] is True and fields[1]["frozen"] is False
    assert fields[2]["ioattrs"] == "readonly"
    assert fields[3]["type"] == "date" and fields[3]["listhide"] is True


async def test_unknown_action_is_400_naming_it(client):
    resp = await client.get("/data.xlsxds?action=frobnicate")
    assert resp.status == 400
    assert "frobnicate" in await resp.text()


async def test_action_from_a_json_body(client):
    resp = await client.post("/data.xlsxds", json={"action": "pagingdata", "rows": 1})
    assert resp.status == 200
    assert (await resp.json())["total"] == 5


async def test_path_call_gets_python_data(make_site, ahcore_client):
    """What a script's ``path_call`` gets: produce(), not a response."""

    class CallProcessor(Processor):
        async def produce(self, context: RequestContext) -> Any:
            path_call = (await context.namespace())["path_call"]
            page = await path_call("data.xlsxds", action="pagingdata", rows=2, sort="f1 desc")
            page["rows"][0]["f1"] = "changed"  # a copy: the shared parse is untouched
            return {"page": page, "all": await path_call("data.xlsxds")}

    class CallPlugin:
        @hookimpl
        def register_processor(self):
            return ProcessorSpec("call", (".call",), CallProcessor)

    config = {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""]],
            "processors": [[".xlsxds", "xlsxds"], [".call", "call"]],
        },
        "plugins": {"xlsxds": True, "call": True},
    }
    files = {**site_files(), "wwwroot/x.call": ""}
    client = await ahcore_client(
        make_site(config=config, files=files), extra_plugins={"call": CallPlugin()}
    )
    answer = await get_json(client, "/x.call")
    assert answer["page"]["total"] == 5
    assert [r["f1"] for r in answer["page"]["rows"]] == ["changed", 4]
    assert [r["f1"] for r in answer["all"]] == [1, 2, 3, 4, 5]


# ---------------------------------------------------------------- parsing once, reloading


async def test_workbook_is_parsed_once_for_many_requests(client, count_parses):
    # Processors load on their first request, so that parse is counted too.
    for _ in range(5):
        await get_json(client, "/data.xlsxds")
    await get_json(client, "/data.xlsxds?action=pagingdata&sort=f2")
    await get_json(client, "/data.xlsxds?action=resultFields")
    await asyncio.gather(*(get_json(client, "/data.xlsxds") for _ in range(10)))
    assert len(count_parses) == 1


async def test_changed_workbook_is_served_fresh_on_the_next_request(
    make_site, ahcore_client, count_parses
):
    site = make_site(config=CONFIG, files=site_files())
    client = await ahcore_client(site)
    assert len(await get_json(client, "/data.xlsxds")) == 5

    book = site / "wwwroot" / "data.xlsx"
    st = book.stat()
    book.write_bytes(xlsx_bytes({"Sheet1": HEADER + [[9, "new", 1, None]]}))
    # Same-second rewrites must still count: bump mtime explicitly.
    os.utime(book, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    assert await get_json(client, "/data.xlsxds") == [{"f1": 9, "f2": "new", "f3": 1.0, "f4": None}]
    assert (await get_json(client, "/data.xlsxds?action=pagingdata"))["total"] == 1
    assert len(count_parses) == 2


async def test_concurrent_requests_after_a_change_share_one_parse(
    make_site, ahcore_client, count_parses
):
    site = make_site(config=CONFIG, files=site_files())
    client = await ahcore_client(site)
    await get_json(client, "/data.xlsxds")
    book = site / "wwwroot" / "data.xlsx"
    st = book.stat()
    book.write_bytes(xlsx_bytes({"Sheet1": HEADER + DATA[:2]}))
    os.utime(book, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    answers = await asyncio.gather(*(get_json(client, "/data.xlsxds") for _ in range(8)))
    assert all(len(a) == 2 for a in answers)
    assert len(count_parses) == 2


async def test_changed_descriptor_is_used_on_the_next_request(make_site, ahcore_client):
    site = make_site(config=CONFIG, files=site_files())
    client = await ahcore_client(site)
    assert (await get_json(client, "/data.xlsxds"))[0]["f1"] == 1
    path = site / "wwwroot" / "data.xlsxds"
    st = path.stat()
    path.write_text(json.dumps({**DESCRIPTOR, "data_from": 8}))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert (await get_json(client, "/data.xlsxds"))[0]["f1"] == 2


# ---------------------------------------------------------------- refusals


async def test_xlsxfile_escaping_the_roots_is_refused(make_site, ahcore_client, caplog):
    files = {
        "secret.xlsx": xlsx_bytes({"Sheet1": HEADER + DATA}),  # in the workdir, not a root
        "wwwroot/esc.xlsxds": json.dumps({**DESCRIPTOR, "xlsxfile": "../secret.xlsx"}),
    }
    client = await ahcore_client(make_site(config=CONFIG, files=files))
    resp = await client.get("/esc.xlsxds")
    assert resp.status == 500
    body = await resp.text()
    assert "apple" not in body and "secret" not in body
    assert "outside" in caplog.text and "refused" in caplog.text


async def test_symlink_escaping_the_roots_is_refused(make_site, ahcore_client, tmp_path):
    outside = tmp_path / "outside.xlsx"
    outside.write_bytes(xlsx_bytes({"Sheet1": HEADER + DATA}))
    site = make_site(config=CONFIG, files={"wwwroot/d.xlsxds": json.dumps(DESCRIPTOR)})
    (site / "wwwroot" / "data.xlsx").symlink_to(outside)
    client = await ahcore_client(site)
    resp = await client.get("/d.xlsxds")
    assert resp.status == 500
    assert "apple" not in await resp.text()


async def test_missing_workbook_or_sheet_is_a_logged_500(make_site, ahcore_client, caplog):
    files = {
        "wwwroot/gone.xlsxds": json.dumps({**DESCRIPTOR, "xlsxfile": "nothere.xlsx"}),
        "wwwroot/data.xlsx": xlsx_bytes({"Sheet1": HEADER + DATA}),
        "wwwroot/nosheet.xlsxds": json.dumps({**DESCRIPTOR, "data_sheet": "Nope"}),
    }
    client = await ahcore_client(make_site(config=CONFIG, files=files))
    assert (await client.get("/gone.xlsxds")).status == 500
    assert "does not exist" in caplog.text
    assert (await client.get("/nosheet.xlsxds")).status == 500
    assert "no sheet 'Nope'" in caplog.text


# ---------------------------------------------------------------- descriptor and values


@pytest.mark.parametrize(
    "raw, message",
    [
        ("not json", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"data_from": 2}', "xlsxfile"),
        ('{"xlsxfile": "a.xlsx", "name_at": true}', "name_at"),
        ('{"xlsxfile": "a.xlsx", "label_at": 0}', "label_at"),
        ('{"xlsxfile": "a.xlsx", "label_at": 3, "data_from": 2}', "before data_from"),
    ],
)
def test_bad_descriptors_say_what_is_wrong(raw, message):
    with pytest.raises(DescriptorError, match=message):
        Descriptor.from_json(raw, "x.xlsxds")


def test_data_from_defaults_to_the_row_after_the_headers():
    assert (
        Descriptor.from_json('{"xlsxfile": "a.xlsx", "name_at": 1, "label_at": 2}').data_from == 3
    )


@pytest.mark.parametrize(
    "value, kind, expected",
    [
        (1001.0, "str", "1001"),
        ("12", "int", 12),
        (" 2.5 ", "float", 2.5),
        ("", "int", None),
        (datetime.datetime(2024, 1, 2, 3, 4), "date", "2024-01-02"),
        (datetime.datetime(2024, 1, 2), None, "2024-01-02"),
        ("2024-01-02", "datetime", "2024-01-02T00:00:00"),
        (45000, "date", "2023-03-15"),
        ("yes", "bool", True),
    ],
)
def test_convert(value, kind, expected):
    assert convert(value, kind) == expected


def test_convert_mismatch_is_reported():
    with pytest.raises(_Mismatch):
        convert("abc", "int")


async def test_mismatched_cells_are_served_as_found(make_site, ahcore_client, caplog):
    rows = [[1, "a", "n/a", None]]
    client = await ahcore_client(make_site(config=CONFIG, files=site_files(rows=rows)))
    assert (await get_json(client, "/data.xlsxds"))[0]["f3"] == "n/a"
    assert "C7" in caplog.text


# ---------------------------------------------------------------- data2xlsx


def read_back(data: bytes) -> list[tuple[Any, ...]]:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    return list(wb.active.iter_rows(values_only=True))


def test_data2xlsx_bytes_with_header_and_typed_values():
    rows = [
        {"id": 1, "name": "a", "when": datetime.date(2024, 1, 2), "tags": ["x"]},
        {"id": 2, "name": '=HYPERLINK("http://evil")', "extra": 1.5},
    ]
    got = read_back(data2xlsx(rows))  # type: ignore[arg-type]
    assert got[0] == ("id", "name", "when", "tags", "extra")
    assert got[1][:2] == (1, "a") and got[1][2].date() == datetime.date(2024, 1, 2)
    assert got[1][3] == '["x"]'
    assert got[2] == (2, '=HYPERLINK("http://evil")', None, None, 1.5)  # text, not a formula


def test_data2xlsx_fields_pick_columns_and_labels():
    fields = [{"name": "b", "label": "Bee"}, "a"]
    got = read_back(data2xlsx([{"a": 1, "b": 2, "c": 3}], fields=fields))  # type: ignore[arg-type]
    assert got == [("Bee", "a"), (2, 1)]
    assert read_back(data2xlsx([[1, 2]])) == [(1, 2)]  # type: ignore[arg-type]


async def test_data2xlsx_in_the_namespace_round_trips_through_xlsxds(make_site, ahcore_client):
    descriptor = {"xlsxfile": "export.xlsx", "name_at": 1, "data_from": 2}
    site = make_site(config=CONFIG, files={"wwwroot/export.xlsxds": json.dumps(descriptor)})
    client = await ahcore_client(site)
    fn = get_site(client.server.app).global_namespace["data2xlsx"]
    rows = [
        {"id": 1, "name": "apple", "price": 1.5, "day": datetime.date(2024, 1, 2)},
        {"id": 2, "name": "pear", "price": 0.25, "day": None},
    ]
    written = fn(rows, "wwwroot/export.xlsx")  # relative to the site's workdir
    assert Path(written) == site / "wwwroot" / "export.xlsx"
    assert await get_json(client, "/export.xlsxds") == [
        {"id": 1, "name": "apple", "price": 1.5, "day": "2024-01-02"},
        {"id": 2, "name": "pear", "price": 0.25, "day": None},
    ]
    assert isinstance(fn(rows), bytes)


async def test_data2xlsx_with_ahserver_headers_gives_a_file_to_download(make_site, ahcore_client):
    # ahserver 1.2.0 (globalEnv.data2xlsx): data2xlsx(rows, headers) with items
    # {name, title} writes a workbook and returns its file name.
    pytest.importorskip("ahcore_dspy")
    config = {
        "website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": [[".dspy", "dspy"]]},
        "filesroot": "$[workdir]$/files",
        "plugins": {"xlsxds": True, "dspy": True},
    }
    script = (
        "rows = [{'a': 1, 'b': 'x'}, {'a': 2, 'b': '=cmd()'}]\n"
        "name = data2xlsx(rows, [DictObject(name='a', title='Amount'), DictObject(name='b')])\n"
        "return await file_download(request, name)\n"
    )
    site = make_site(config=config, files={"wwwroot/export.dspy": script})
    client = await ahcore_client(site)
    resp = await client.get("/export.dspy")
    assert resp.status == 200 and "attachment" in resp.headers["Content-Disposition"]
    assert read_back(await resp.read()) == [("Amount", "b"), (1, "x"), (2, "=cmd()")]
    exports = list((site / "files" / "exports").glob("*.xlsx"))
    assert len(exports) == 1 and len(exports[0].stem) == 32  # a random name under filesroot
