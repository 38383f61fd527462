"""The ``.xlsxds`` descriptor and the worksheet it describes, parsed into records.

Everything here is synchronous and free of aiohttp: the processor runs
:func:`read_descriptor` and :func:`parse_sheet` in a worker thread, once per
change of the descriptor or the workbook, and serves every request from the
resulting immutable :class:`SheetData` (records plus pre-encoded JSON).
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ahcore.api import dumps

log = logging.getLogger("ahcore_xlsxds")

#: The header-row keys of a descriptor, in the order the field description lists them.
HEADER_ROWS = (
    "label_at",
    "name_at",
    "datatype_at",
    "ioattrs_at",
    "listhide_at",
    "inputhide_at",
    "frozen_at",
)

# Declared type names (lower case) → the kind values are converted to. The
# declared text itself is kept in the field description, because UIs built for
# ahserver use it to pick input widgets ("text" vs "str").
TYPE_KINDS: Mapping[str, str] = {
    **dict.fromkeys(("str", "string", "char", "varchar", "text", "code", "memo"), "str"),
    **dict.fromkeys(("int", "integer", "long", "short", "smallint", "bigint"), "int"),
    **dict.fromkeys(
        ("float", "double", "real", "number", "numeric", "decimal", "money", "ddouble"), "float"
    ),
    "date": "date",
    **dict.fromkeys(("datetime", "timestamp"), "datetime"),
    "time": "time",
    **dict.fromkeys(("bool", "boolean"), "bool"),
}

_TRUE_WORDS = frozenset({"1", "y", "yes", "true", "t", "x", "on", "是"})
_FALSE_WORDS = frozenset({"", "0", "n", "no", "false", "f", "off", "否"})


class DescriptorError(ValueError):
    """An ``.xlsxds`` file or its workbook is unusable; the message says why and where."""


@dataclass(frozen=True)
class Descriptor:
    """A parsed ``.xlsxds`` file: which workbook, which sheet, which rows mean what.

    Row numbers are 1-based, as Excel shows them; ``None`` means the sheet has
    no such header row.
    """

    xlsxfile: str
    data_from: int
    data_sheet: str | None = None
    label_at: int | None = None
    name_at: int | None = None
    datatype_at: int | None = None
    ioattrs_at: int | None = None
    listhide_at: int | None = None
    inputhide_at: int | None = None
    frozen_at: int | None = None

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "<xlsxds>") -> Descriptor:
        """Validate the JSON text of an ``.xlsxds`` file; unknown keys are ignored."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DescriptorError(
                f"{source}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
            ) from None
        except ValueError as exc:
            raise DescriptorError(f"{source}: not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise DescriptorError(f"{source}: expected a JSON object")
        xlsxfile = raw.get("xlsxfile")
        if not isinstance(xlsxfile, str) or not xlsxfile.strip():
            raise DescriptorError(f"{source}: 'xlsxfile' must be a non-empty string")
        sheet = raw.get("data_sheet")
        if sheet is not None and not isinstance(sheet, str):
            raise DescriptorError(f"{source}: 'data_sheet' must be a string or null")
        rows = {key: _row_number(raw.get(key), key, source) for key in HEADER_ROWS}
        used = [n for n in rows.values() if n is not None]
        data_from = _row_number(raw.get("data_from"), "data_from", source)
        if data_from is None:
            data_from = max(used, default=0) + 1
        late = sorted(k for k, n in rows.items() if n is not None and n >= data_from)
        if late:
            raise DescriptorError(
                f"{source}: header rows {', '.join(late)} must come before data_from={data_from}"
            )
        return cls(xlsxfile=xlsxfile.strip(), data_from=data_from, data_sheet=sheet or None, **rows)


def _row_number(value: Any, key: str, source: str) -> int | None:
    if value is None:
        return None
    # bool is an int subclass; `true` as a row number is a mistake, not row 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DescriptorError(f"{source}: {key!r} must be a row number ≥ 1 or null, got {value!r}")
    return value


def resolve_workbook(descriptor_path: Path, xlsxfile: str, allowed: Iterable[str]) -> Path:
    """The workbook's real path, refusing anything outside the ``allowed`` folders.

    ``xlsxfile`` is relative to the descriptor's folder. The real path
    (symlinks resolved) must lie inside that folder or one of ``allowed``
    (the site's content roots), so a descriptor cannot read arbitrary files
    (``../../etc/…``, the site's ``conf/``) and serve them as JSON.
    """
    folder = descriptor_path.parent
    real = os.path.realpath(folder / xlsxfile)
    bases = [os.path.realpath(folder), *allowed]
    for base in bases:
        base = base.rstrip(os.sep) + os.sep
        if real.startswith(base):
            return Path(real)
    raise DescriptorError(
        f"{descriptor_path}: xlsxfile {xlsxfile!r} resolves to {real}, outside the "
        "descriptor's folder and the site's content roots; refused"
    )


# ---------------------------------------------------------------- values


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _flag(value: Any) -> bool:
    """A hide/frozen cell as a bool: 1, "Y", "yes", "x", TRUE … are true."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float)):
        return bool(value)
    word = str(value).strip().lower()
    return word not in _FALSE_WORDS


def _iso(value: datetime.datetime) -> str:
    # Excel has only datetimes; one at midnight is almost always a date cell.
    if value.hour == value.minute == value.second == value.microsecond == 0:
        return value.date().isoformat()
    return value.isoformat()


def infer(value: Any) -> Any:
    """A cell value as JSON-ready data when no type is declared."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime.datetime):
        return _iso(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)  # timedelta and anything exotic


class _Mismatch(Exception):
    pass


def convert(value: Any, kind: str | None) -> Any:
    """A cell value converted to the declared ``kind`` (see :data:`TYPE_KINDS`).

    Raises :class:`_Mismatch` when the cell cannot be that kind; the caller then
    keeps the inferred value, so one odd cell never makes a sheet unservable.
    """
    if kind is None or value is None:
        return infer(value)
    if isinstance(value, str) and kind != "str":
        value = value.strip()
        if not value:
            return None
    try:
        if kind == "str":
            if isinstance(value, float) and value.is_integer():
                return str(int(value))  # codes typed into number cells: 1001.0 → "1001"
            if isinstance(value, bool):
                return "true" if value else "false"
            return value if isinstance(value, str) else str(infer(value))
        if kind == "int":
            if isinstance(value, float):
                if not value.is_integer():
                    raise _Mismatch
                return int(value)
            if isinstance(value, (int, str)):
                return int(value)
            raise _Mismatch
        if kind == "float":
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                return float(value)
            raise _Mismatch
        if kind == "bool":
            return _flag(value)
        if kind in ("date", "datetime", "time"):
            return _convert_temporal(value, kind)
    except (TypeError, ValueError, OverflowError):
        raise _Mismatch from None
    return infer(value)


def _convert_temporal(value: Any, kind: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        from openpyxl.utils.datetime import from_excel  # imported on first use, as below

        value = from_excel(value)  # a serial number in a cell without a date format
    elif isinstance(value, str):
        if kind == "time":
            return datetime.time.fromisoformat(value).isoformat()
        value = datetime.datetime.fromisoformat(value)
    if isinstance(value, datetime.datetime):
        if kind == "date":
            return value.date().isoformat()
        if kind == "time":
            return value.time().isoformat()
        return value.isoformat()
    if isinstance(value, datetime.date) and kind != "time":
        return value.isoformat() if kind == "date" else f"{value.isoformat()}T00:00:00"
    if isinstance(value, datetime.time) and kind == "time":
        return value.isoformat()
    raise _Mismatch


def _inferred_type(values: Iterable[Any]) -> str:
    kinds = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int")
        elif isinstance(v, float):
            kinds.add("float")
        else:
            kinds.add("str")
    if kinds == {"int", "float"}:
        return "float"
    return kinds.pop() if len(kinds) == 1 else "str"


# ---------------------------------------------------------------- the sheet


SortSpec = tuple[tuple[str, bool], ...]  # (field name, descending) pairs


@dataclass
class SheetData:
    """One parse of a worksheet: field descriptions, records and their JSON.

    Immutable once built (the sort cache only memoises); shared by every
    request until the workbook or the descriptor changes.
    """

    fields: list[dict[str, Any]]
    records: list[dict[str, Any]]
    getdata_body: bytes = b""
    fields_body: bytes = b""
    _sorted: dict[SortSpec, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Encoded once per parse, so a getdata request only sends bytes.
        self.getdata_body = dumps(self.records)
        self.fields_body = dumps(self.fields)
        self.names = tuple(f["name"] for f in self.fields)

    def sorted_records(self, spec: SortSpec) -> list[dict[str, Any]]:
        """Records ordered by ``spec``; ``None`` sorts last ascending, first descending.

        Memoised per spec (a few entries), since list UIs ask for the same
        order page after page.
        """
        if not spec:
            return self.records
        rows = self._sorted.get(spec)
        if rows is None:
            rows = list(self.records)
            for name, descending in reversed(spec):  # stable sorts, least significant first
                rows.sort(key=functools.partial(_field_key, name), reverse=descending)
            if len(self._sorted) >= 16:
                self._sorted.clear()
            self._sorted[spec] = rows
        return rows


def _field_key(name: str, record: dict[str, Any]) -> tuple[int, Any]:
    return _sort_key(record[name])


def _sort_key(value: Any) -> tuple[int, Any]:
    # Group by kind so mixed columns never compare str with int.
    if value is None:
        return (2, 0)
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value))


def parse_sheet(descriptor: Descriptor, workbook: Path, source: str = "<xlsxds>") -> SheetData:
    """Read the descriptor's worksheet into :class:`SheetData` (blocking; run in a thread)."""
    try:
        # openpyxl (about 13 MB) is imported on the first parse, not at start-up:
        # a worker that never serves a workbook does not carry it.
        import openpyxl

        wb = openpyxl.load_workbook(workbook, read_only=True, data_only=True)
    except FileNotFoundError:
        raise DescriptorError(f"{source}: workbook {workbook} does not exist") from None
    except Exception as exc:
        raise DescriptorError(f"{source}: cannot read workbook {workbook}: {exc}") from exc
    try:
        if descriptor.data_sheet is None:
            ws = wb.worksheets[0]
        elif descriptor.data_sheet in wb.sheetnames:
            ws = wb[descriptor.data_sheet]
        else:
            raise DescriptorError(
                f"{source}: workbook {workbook.name} has no sheet {descriptor.data_sheet!r} "
                f"(sheets: {', '.join(wb.sheetnames)})"
            )
        if hasattr(ws, "reset_dimensions"):
            # Some writers store a wrong <dimension>; read every row that is there.
            ws.reset_dimensions()
        header_at = {getattr(descriptor, k): k for k in HEADER_ROWS if getattr(descriptor, k)}
        headers: dict[str, Sequence[Any]] = {}
        data_rows: list[tuple[int, Sequence[Any]]] = []
        for number, row in enumerate(ws.iter_rows(values_only=True), start=1):
            if number in header_at:
                headers[header_at[number]] = row
            elif number >= descriptor.data_from and not all(_is_blank(v) for v in row):
                data_rows.append((number, row))
    finally:
        wb.close()
    return build_sheet(descriptor, headers, data_rows, source)


def _cell(row: Sequence[Any] | None, col: int) -> Any:
    if row is None or col >= len(row):
        return None
    return row[col]


def build_sheet(
    descriptor: Descriptor,
    headers: Mapping[str, Sequence[Any]],
    data_rows: Sequence[tuple[int, Sequence[Any]]],
    source: str = "<xlsxds>",
) -> SheetData:
    """Turn header rows and data rows into fields and typed records."""
    names_row = headers.get("name_at")
    columns: list[tuple[int, str]] = []
    if descriptor.name_at is not None:
        # Columns without a name are spacers or notes, not fields.
        seen: dict[str, int] = {}
        for col, value in enumerate(names_row or ()):
            if _is_blank(value):
                continue
            name = str(value).strip()
            if name in seen:
                raise DescriptorError(
                    f"{source}: field name {name!r} appears twice in row {descriptor.name_at} "
                    f"(columns {seen[name] + 1} and {col + 1})"
                )
            seen[name] = col
            columns.append((col, name))
    else:
        # ahserver's rule: unnamed fields are f1 … fN over every used column.
        width = 0
        for row in [*headers.values(), *(r for _, r in data_rows)]:
            for col in range(len(row) - 1, -1, -1):
                if not _is_blank(row[col]):
                    width = max(width, col + 1)
                    break
        columns = [(col, f"f{col + 1}") for col in range(width)]

    declared: list[str | None] = []
    kinds: list[str | None] = []
    for col, _ in columns:
        text = _cell(headers.get("datatype_at"), col)
        text = None if _is_blank(text) else str(text).strip()
        declared.append(text)
        kinds.append(TYPE_KINDS.get(text.lower()) if text else None)

    records: list[dict[str, Any]] = []
    mismatches: list[str] = []
    for number, row in data_rows:
        record: dict[str, Any] = {}
        for (col, name), kind in zip(columns, kinds, strict=True):
            raw = _cell(row, col)
            try:
                record[name] = convert(raw, kind)
            except _Mismatch:
                record[name] = infer(raw)
                from openpyxl.utils import get_column_letter  # imported on first use, as below

                mismatches.append(f"{get_column_letter(col + 1)}{number}")
        if any(v is not None and v != "" for v in record.values()):
            records.append(record)
    if mismatches:
        log.warning(
            "%s: %d cell(s) do not match their declared type and are served as found: %s",
            source,
            len(mismatches),
            ", ".join(mismatches[:10]) + (" …" if len(mismatches) > 10 else ""),
        )

    fields = []
    for i, (col, name) in enumerate(columns):
        label = _cell(headers.get("label_at"), col)
        ioattrs = _cell(headers.get("ioattrs_at"), col)
        fields.append(
            {
                "name": name,
                "label": name if _is_blank(label) else str(label).strip(),
                "type": declared[i] or _inferred_type(r[name] for r in records),
                "ioattrs": _ioattrs(ioattrs),
                "listhide": _flag(_cell(headers.get("listhide_at"), col)),
                "inputhide": _flag(_cell(headers.get("inputhide_at"), col)),
                "frozen": _flag(_cell(headers.get("frozen_at"), col)),
            }
        )
    return SheetData(fields=fields, records=records)


def _ioattrs(value: Any) -> Any:
    """An io-attributes cell: JSON objects/arrays are decoded, other text kept."""
    if _is_blank(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "{[":
            try:
                return json.loads(text)
            except ValueError:
                pass
        return text
    return infer(value)
