"""``data2xlsx``: records → an .xlsx workbook, the inverse of an ``.xlsxds`` source.

ahserver offered ``data2xlsx`` to scripts for "export to Excel" buttons; this
keeps the name and writes with openpyxl's streaming (write-only) mode so a
large export does not hold a full cell model in memory.
"""

from __future__ import annotations

import datetime
import decimal
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def _columns(
    rows: list[Any], fields: Sequence[str | Mapping[str, Any]] | None
) -> tuple[list[str], list[str]] | None:
    """(keys, header texts); ``None`` when rows are sequences and no fields were given."""
    if fields is not None:
        keys, header = [], []
        for f in fields:
            if isinstance(f, Mapping):
                name = str(f["name"])
                keys.append(name)
                label = f.get("label")
                header.append(str(label) if label not in (None, "") else name)
            else:
                keys.append(str(f))
                header.append(str(f))
        return keys, header
    if rows and not isinstance(rows[0], Mapping):
        return None
    keys = list(dict.fromkeys(k for row in rows for k in row))  # first-seen order
    return keys, keys


# openpyxl's ILLEGAL_CHARACTERS_RE (control characters a cell cannot hold),
# repeated so that importing this module does not import openpyxl.
ILLEGAL_CHARACTERS_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


def _cell_value(value: Any) -> Any:
    """A Python value as something openpyxl stores faithfully."""
    if value is None or isinstance(value, (bool, int, float, decimal.Decimal)):
        return value
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:  # Excel has no time zones: store UTC wall time
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value
    if isinstance(value, (datetime.date, datetime.time)):
        return value
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(value, ensure_ascii=False, default=str)
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))


def _cell(ws: Any, value: Any) -> Any:
    value = _cell_value(value)
    if isinstance(value, str) and value.startswith("="):
        # openpyxl would store this as a formula; data is never a formula
        # (spreadsheet formula injection from user-entered text).
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(ws, value=value)
        cell.data_type = "s"
        return cell
    return value


def data2xlsx(
    rows: Iterable[Mapping[str, Any] | Sequence[Any]],
    filename: str | os.PathLike[str] | None = None,
    fields: Sequence[str | Mapping[str, Any]] | None = None,
    *,
    sheet_name: str = "Sheet1",
    base_dir: str | os.PathLike[str] | None = None,
) -> bytes | str:
    """Build an .xlsx from ``rows``; return its bytes, or write ``filename`` and return its path.

    ``rows`` are dicts (records, as ``getdata`` and ``sqlExe`` return) or
    sequences. ``fields`` picks and orders the columns: field names, or field
    descriptions ``{"name", "label", …}`` as ``resultFields`` returns (the
    header then shows the labels). Without ``fields`` the columns are the
    keys of the records in first-seen order and the header shows them;
    sequence rows without ``fields`` are written without a header.

    Strings starting with ``=`` are stored as text, never as formulas.
    A relative ``filename`` is taken relative to ``base_dir`` (the site's
    workdir for the ``data2xlsx`` scripts see); the file is replaced
    atomically so a reader never sees half a workbook. Blocking: for a large
    export in a script, run it in a thread (``await rfexe(data2xlsx, rows)``).
    """
    from openpyxl import Workbook  # imported on first use, as in sheet.py

    rows = list(rows)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet_name)
    columns = _columns(rows, fields)
    if columns is None:
        for row in rows:
            ws.append([_cell(ws, v) for v in row])
    else:
        keys, header = columns
        ws.append([_cell(ws, h) for h in header])
        for row in rows:
            if isinstance(row, Mapping):
                ws.append([_cell(ws, row.get(k)) for k in keys])
            else:
                ws.append([_cell(ws, v) for v in list(row)[: len(keys)]])

    if filename is None:
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue()

    path = Path(filename)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".data2xlsx-", suffix=".xlsx", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            wb.save(out)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would surprise whoever reads the export
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return str(path)
