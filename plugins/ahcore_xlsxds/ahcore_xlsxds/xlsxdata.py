"""ahserver's ``xlsxdata(path, desc)``: a worksheet read the way ahserver's ``XLSXData`` read it.

Scripts use it to read a workbook with an ``.xlsxds``-style descriptor
(``data_from``, ``data_sheet``, ``name_at``, ``label_at`` …) without serving
it::

    book = xlsxdata("data/prices.xlsx", {"data_sheet": "Sheet1", "name_at": 1, "data_from": 2})
    for row in book.getData({}):
        await sor.C("prices", row)

Values are the cells' own (numbers, text, ``datetime``; a formula's last
saved value), unconverted, as ahserver returned them; the ``.xlsxds``
processor's typed, JSON-ready parse is :mod:`ahcore_xlsxds.sheet`.

Where ahserver's class is kept as it was: column names ``f1`` … ``fN``
without ``name_at``, labels from row 1 unless ``label_at`` says otherwise,
type ``'str'`` without ``datatype_at``, flags true only for ``Y``/``y``,
every row up to the sheet's last included (blank ones too).

Where it differs (each an ahserver bug):

- ``getPagingData`` returns ``rows`` records per page and ``total`` is the
  number of data rows (ahserver returned ``rows + 1`` records, the last one
  again at the top of the next page, and a ``total`` one short);
- a ``frozen_at`` row works (ahserver raised ``NameError``), and an
  ``ioattrs_at`` cell holding a JSON object is merged into the field
  (ahserver's ``json.loads(t, 'utf-8')`` always failed on Python 3);
- a missing ``data_sheet`` means the first sheet (ahserver: ``KeyError``).

The workbook is read once, when the object is made (blocking; a large one
is better read with ``await rfexe(xlsxdata, path, desc)``). The path must
lie in the site's work directory or a content root (see the plugin hook).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class XLSXData:
    """One worksheet of a workbook, read into memory, with ahserver's methods."""

    def __init__(self, path: str | Path, desc: Mapping[str, Any]) -> None:
        import openpyxl  # on first use: a worker that never reads a workbook does not load it

        self.desc = desc
        self.xlsxfile = str(path)
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = desc.get("data_sheet")
            ws = wb[sheet] if sheet else wb.worksheets[0]
            if hasattr(ws, "reset_dimensions"):
                ws.reset_dimensions()  # some writers store a wrong <dimension>
            self.rows: list[Sequence[Any]] = [tuple(r) for r in ws.iter_rows(values_only=True)]
        finally:
            wb.close()
        self.max_row = len(self.rows)
        self.max_column = max((len(r) for r in self.rows), default=0)

    # ------------------------------------------------------------ cells

    def _cell(self, row: int | None, col: int) -> Any:
        """The value at 1-based ``row``, ``col``; ``None`` outside the sheet."""
        if row is None or not 1 <= row <= self.max_row:
            return None
        values = self.rows[row - 1]
        return values[col - 1] if col <= len(values) else None

    def _name(self, col: int) -> Any:
        at = self.desc.get("name_at")
        return self._cell(at, col) if at is not None else f"f{col}"

    def _label(self, col: int) -> Any:
        at = self.desc.get("label_at", 1)
        return self._cell(at, col) if at is not None else f"f{col}"

    def _type(self, col: int) -> Any:
        at = self.desc.get("datatype_at")
        return self._cell(at, col) if at is not None else "str"

    def _flag(self, key: str, col: int) -> bool:
        at = self.desc.get(key)
        return at is not None and self._cell(at, col) in ("Y", "y")

    def _ioattrs(self, col: int) -> dict[str, Any]:
        at = self.desc.get("ioattrs_at")
        text = self._cell(at, col) if at is not None else None
        if isinstance(text, str):
            try:
                value = json.loads(text)
            except ValueError:
                return {}
            if isinstance(value, dict):
                return value
        return {}

    # ------------------------------------------------------------ ahserver's methods

    def getBaseFieldsInfo(self, ns: Any = None) -> list[dict[str, Any]]:
        """One description per column: ``name``, ``label``, ``type``, ``listhide``,
        ``inputhide``, ``frozen``, plus the column's io-attributes."""
        fields = []
        for col in range(1, self.max_column + 1):
            field = {
                "name": self._name(col),
                "label": self._label(col),
                "type": self._type(col),
                "listhide": self._flag("listhide_at", col),
                "inputhide": self._flag("inputhide_at", col),
                "frozen": self._flag("frozen_at", col),
            }
            field.update(self._ioattrs(col))
            fields.append(field)
        return fields

    @property
    def data_from(self) -> int:
        return int(self.desc.get("data_from", 2))

    def getPeriodData(self, min_r: int, max_r: int) -> list[dict[str, Any]]:
        """Records of rows ``min_r`` up to (not including) ``max_r``, 1-based."""
        if min_r < self.data_from:
            raise ValueError(f"row {min_r} is above data_from={self.data_from}")
        max_r = min(max_r, self.max_row + 1)
        names = [self._name(col) for col in range(1, self.max_column + 1)]
        return [
            {name: self._cell(row, col) for col, name in enumerate(names, 1)}
            for row in range(min_r, max_r)
        ]

    def getArgumentsDesc(self, ns: Any = None, request: Any = None) -> None:
        return None

    def getData(self, ns: Any = None) -> list[dict[str, Any]]:
        """Every data row, from ``data_from`` (default 2) to the sheet's last."""
        return self.getPeriodData(self.data_from, self.max_row + 1)

    def getPagingData(self, ns: Mapping[str, Any]) -> dict[str, Any]:
        """``{total, rows}``: page ``ns['page']`` (default 1) of ``ns['rows']`` (default 50)."""
        rows = int(ns.get("rows", 50))
        page = int(ns.get("page", 1))
        if rows < 1 or page < 1:
            raise ValueError("page and rows must be at least 1")
        start = (page - 1) * rows + self.data_from
        return {
            "total": max(0, self.max_row - self.data_from + 1),
            "rows": self.getPeriodData(start, start + rows),
        }
