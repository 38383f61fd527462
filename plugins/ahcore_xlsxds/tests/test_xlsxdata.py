"""``xlsxdata(path, desc)``: ahserver's XLSXData for scripts, kept inside the site."""

from __future__ import annotations

import datetime
import io
import json
import os
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from ahcore_xlsxds.xlsxdata import XLSXData

from ahcore.api import FileOutZone, SiteFileNotFound, get_site

# The descriptor of SPEC §7 and ahserver's xlsxData docstring: six header rows, data from 7.
DESC = {
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
    ["ID", "Name", "Price"],
    ["int", "str", "float"],
    ['{"width": 10}', "not json", None],
    [None, "Y", "n"],
    ["y", None, None],
    [None, None, "Y"],
]
DATA = [
    [1, "apple", 1.5],
    [2, "pear", 0.75],
    [None, None, None],  # a blank row is a row, as in ahserver
    [4, "kiwi", datetime.datetime(2022, 6, 1)],
    [5, "plum", "=1+1"],
]


def workbook(rows: list[list[Any]], title: str = "Sheet1") -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    wb.create_sheet("Other").append(["other sheet"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


CONFIG = {
    "website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": [[".xlsxds", "xlsxds"]]},
    "plugins": {"xlsxds": True},
}


@pytest.fixture
def site_dir(make_site: Any) -> Path:
    return make_site(
        config=CONFIG,
        files={
            "data/book.xlsx": workbook(HEADER + DATA),
            "wwwroot/public.xlsx": workbook([["name"], ["a"], ["b"]]),
            "conf/hidden.xlsx": workbook([["secret"]]),
        },
    )


@pytest.fixture
async def xlsxdata(ahcore_client: Any, site_dir: Path) -> Any:
    client = await ahcore_client(site_dir)
    return get_site(client.app).global_namespace["xlsxdata"]


async def test_fields_as_ahserver_described_them(xlsxdata: Any) -> None:
    book = xlsxdata("data/book.xlsx", DESC)
    assert book.getBaseFieldsInfo() == [
        {"name": "f1", "label": "ID", "type": "int", "listhide": False, "inputhide": True,
         "frozen": False, "width": 10},
        {"name": "f2", "label": "Name", "type": "str", "listhide": True, "inputhide": False,
         "frozen": False},
        {"name": "f3", "label": "Price", "type": "float", "listhide": False, "inputhide": False,
         "frozen": True},
    ]  # fmt: skip


async def test_data_rows_are_the_cells_own_values(xlsxdata: Any) -> None:
    rows = xlsxdata("data/book.xlsx", DESC).getData({})
    assert rows[0] == {"f1": 1, "f2": "apple", "f3": 1.5}
    assert rows[2] == {"f1": None, "f2": None, "f3": None}
    assert rows[3]["f3"] == datetime.datetime(2022, 6, 1)
    assert rows[4]["f3"] is None  # a formula openpyxl wrote has no saved value yet
    assert len(rows) == 5


async def test_paging_without_ahservers_overlap(xlsxdata: Any) -> None:
    book = xlsxdata("data/book.xlsx", DESC)
    first = book.getPagingData({"page": 1, "rows": 2})
    second = book.getPagingData({"page": "2", "rows": "2"})
    third = book.getPagingData({"page": 3, "rows": 2})
    assert first["total"] == second["total"] == 5
    assert [r["f2"] for r in first["rows"]] == ["apple", "pear"]
    assert [r["f2"] for r in second["rows"]] == [None, "kiwi"]
    assert [r["f2"] for r in third["rows"]] == ["plum"]
    assert book.getPagingData({"page": 9})["rows"] == []
    assert len(book.getPagingData({})["rows"]) == 5  # 50 rows a page by default


async def test_names_from_a_row_and_defaults(xlsxdata: Any) -> None:
    book = xlsxdata("wwwroot/public.xlsx", {"name_at": 1, "label_at": None})
    assert book.getData() == [{"name": "a"}, {"name": "b"}]  # data_from defaults to 2
    assert book.getBaseFieldsInfo()[0]["label"] == "f1"
    other = xlsxdata("data/book.xlsx", {"data_sheet": "Other", "data_from": 1})
    assert other.getData() == [{"f1": "other sheet"}]
    assert xlsxdata("data/book.xlsx", {}).max_row == 11  # no data_sheet: the first sheet
    with pytest.raises(ValueError):
        book.getPeriodData(1, 3)  # above data_from


async def test_absolute_paths_inside_the_site_are_fine(xlsxdata: Any, site_dir: Path) -> None:
    book = xlsxdata(site_dir / "wwwroot" / "public.xlsx", {"name_at": 1})
    assert len(book.getData()) == 2


@pytest.mark.parametrize("name", ["../outside.xlsx", "/etc/passwd", "conf/hidden.xlsx"])
async def test_outside_the_site_is_refused_before_reading(
    xlsxdata: Any, site_dir: Path, name: str
) -> None:
    (site_dir.parent / "outside.xlsx").write_bytes(workbook([["x"]]))
    with pytest.raises(FileOutZone):
        xlsxdata(name, {})


async def test_a_linked_module_folder_counts_as_the_site(
    ahcore_client: Any, make_site: Any, tmp_path: Path
) -> None:
    module = tmp_path / "module"
    module.mkdir()
    (module / "book.xlsx").write_bytes(workbook([["name"], ["m"]]))
    site_dir = make_site(config=CONFIG, files={})
    os.symlink(module, site_dir / "wwwroot" / "mod")
    client = await ahcore_client(site_dir)
    ns = get_site(client.app).global_namespace
    assert ns["xlsxdata"]("wwwroot/mod/book.xlsx", {"name_at": 1}).getData() == [{"name": "m"}]
    # What abspath('/mod/book.xlsx') gives a script: the real path, through the link.
    real = get_site(client.app).resolve("/mod/book.xlsx")
    assert real is not None
    assert ns["xlsxdata"](real.path, {"name_at": 1}).getData() == [{"name": "m"}]


async def test_with_follow_symlinks_off_a_link_out_is_refused(
    ahcore_client: Any, make_site: Any, tmp_path: Path
) -> None:
    (tmp_path / "outside.xlsx").write_bytes(workbook([["x"]]))
    config = {**CONFIG, "website": {**CONFIG["website"], "follow_symlinks": False}}
    site_dir = make_site(config=config, files={})
    (site_dir / "data").mkdir()
    os.symlink(tmp_path / "outside.xlsx", site_dir / "data" / "link.xlsx")
    client = await ahcore_client(site_dir)
    with pytest.raises(FileOutZone):
        get_site(client.app).global_namespace["xlsxdata"]("data/link.xlsx", {})


async def test_a_missing_workbook(xlsxdata: Any) -> None:
    with pytest.raises(SiteFileNotFound):
        xlsxdata("data/none.xlsx", {})


async def test_from_a_script(make_site: Any, ahcore_client: Any) -> None:
    pytest.importorskip("ahcore_dspy")
    config = {
        "website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": [[".dspy", "dspy"]]},
        "plugins": {"xlsxds": True, "dspy": True},
    }
    script = (
        "book = xlsxdata('data/book.xlsx', json.loads(params_kw.desc))\n"
        "return book.getPagingData(params_kw)\n"
    )
    files = {"data/book.xlsx": workbook(HEADER + DATA), "wwwroot/read.dspy": script}
    client = await ahcore_client(make_site(config=config, files=files))
    r = await client.get("/read.dspy", params={"desc": json.dumps(DESC), "page": "2", "rows": "3"})
    assert r.status == 200, await r.text()
    data = await r.json()
    assert data["total"] == 5
    assert [row["f2"] for row in data["rows"]] == ["kiwi", "plum"]


def test_the_class_reads_any_workbook_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "b.xlsx"
    path.write_bytes(workbook(HEADER + DATA))
    assert XLSXData(path, DESC).getData()[1]["f2"] == "pear"
