"""ahcore-xlsxds: ``.xlsxds`` files serve an .xlsx worksheet as a JSON data source.

The plugin module registered in the ``ahcore`` entry-point group is
:mod:`ahcore_xlsxds.plugin`; :func:`data2xlsx` is also offered to scripts
through the ``env_globals`` hook.
"""

from __future__ import annotations

from ahcore_xlsxds.export import data2xlsx
from ahcore_xlsxds.processor import XlsxdsProcessor
from ahcore_xlsxds.sheet import Descriptor, DescriptorError, SheetData, parse_sheet

__all__ = [
    "Descriptor",
    "DescriptorError",
    "SheetData",
    "XlsxdsProcessor",
    "data2xlsx",
    "parse_sheet",
]
