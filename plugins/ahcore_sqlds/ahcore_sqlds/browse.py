"""The browser's view of a ``.sqlds``: declared arguments as form inputs and link values.

The page itself (table, sort links, pager) is the kernel's
:mod:`ahcore.datatable`; this module only says how this data source's
``arguments`` appear in it.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from ahcore.api import FormField
from ahcore_sqlds.arguments import Argument

# Declared type → (input type, step). Types not listed are text inputs.
_INPUTS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("int", "integer", "long", "short"), ("number", "1")),
    **dict.fromkeys(("float", "double", "real", "decimal", "number", "numeric", "money"),
                    ("number", "any")),
    "date": ("date", ""),
    **dict.fromkeys(("datetime", "timestamp"), ("datetime-local", "1")),
    "time": ("time", "1"),
}
_BOOL_TYPES = ("bool", "boolean")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def _given(params: Mapping[str, Any], name: str) -> str | None:
    """The request's value of ``name`` as text, if it sent one (a repeated one: the first)."""
    value = params.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or value == "" or isinstance(value, (dict, list)):
        return None
    return _text(value)


def argument_query(arguments: Sequence[Argument], params: Mapping[str, Any]) -> dict[str, str]:
    """The argument values the request sent, kept by every link of the page."""
    query = {}
    for arg in arguments:
        value = _given(params, arg.name)
        if value is not None:
            query[arg.name] = value
    return query


def form_fields(
    arguments: Sequence[Argument], raw: Sequence[Any], params: Mapping[str, Any]
) -> list[FormField]:
    """One input per declared argument, showing the request's value or the default."""
    labels = {
        spec["name"]: str(spec.get("label") or spec["name"])
        for spec in raw
        if isinstance(spec, dict) and isinstance(spec.get("name"), str)
    }
    fields = []
    for arg in arguments:
        given = _given(params, arg.name)
        value = given if given is not None else _text(arg.default if arg.has_default else None)
        label = labels.get(arg.name, arg.name)
        if arg.type in _BOOL_TYPES:
            try:
                value = _text(arg.convert(value)) if value else ""
            except ValueError:
                value = ""
            fields.append(FormField(arg.name, label, "select", value, ("", "true", "false")))
            continue
        input_type, step = _INPUTS.get(arg.type, ("text", ""))
        fields.append(FormField(arg.name, label, input_type, value, step=step))
    return fields
