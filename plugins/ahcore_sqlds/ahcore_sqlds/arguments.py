"""Declared arguments of a data source: request text to typed, bound values.

Every value a visitor sends is converted to the declared type (or refused
with a 400 naming the argument) and then bound as a driver parameter.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ahcore.api import BadQuery

_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "n", "f"})


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return int(value) if isinstance(value, (int, float)) else int(str(value).strip())


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(value)
    return number


def _to_decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, bool):
        raise ValueError(value)
    number = decimal.Decimal(str(value).strip())
    if not number.is_finite():
        raise ValueError(value)
    return number


def _to_date(value: Any) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value).strip()[:10])


def _to_datetime(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value).strip())


def _to_time(value: Any) -> datetime.time:
    if isinstance(value, datetime.time):
        return value
    return datetime.time.fromisoformat(str(value).strip())


def _to_str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(value)
    return str(value)


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "str": _to_str,
    "string": _to_str,
    "text": _to_str,
    "char": _to_str,
    "int": _to_int,
    "integer": _to_int,
    "long": _to_int,
    "short": _to_int,
    "float": _to_float,
    "double": _to_float,
    "real": _to_float,
    "decimal": _to_decimal,
    "number": _to_decimal,
    "numeric": _to_decimal,
    "money": _to_decimal,
    "date": _to_date,
    "datetime": _to_datetime,
    "timestamp": _to_datetime,
    "time": _to_time,
    "bool": _to_bool,
    "boolean": _to_bool,
}


@dataclass(frozen=True)
class Argument:
    """One declared argument: name, type, and default (already converted)."""

    name: str
    type: str
    has_default: bool
    default: Any
    convert: Callable[[Any], Any]

    @classmethod
    def parse(cls, spec: Any) -> Argument:
        """Read one entry of ``arguments``; a bad declaration is the file's fault (ValueError)."""
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ValueError(f"each argument needs a 'name': {spec!r}")
        type_name = str(spec.get("type") or "str").lower()
        convert = CONVERTERS.get(type_name)
        if convert is None:
            raise ValueError(
                f"argument {spec['name']!r}: unknown type {type_name!r} "
                f"(known: {', '.join(sorted(CONVERTERS))})"
            )
        has_default = "default" in spec
        default = spec.get("default")
        if has_default and default is not None and default != "":
            try:
                default = convert(default)
            except (ValueError, TypeError, ArithmeticError):
                raise ValueError(
                    f"argument {spec['name']!r}: default {default!r} is not a {type_name}"
                ) from None
        elif has_default:
            default = None
        return cls(spec["name"], type_name, has_default, default, convert)

    def value(self, params: Mapping[str, Any]) -> Any:
        """This argument's value from the request, or 400."""
        raw = params.get(self.name)
        if raw is None or raw == "":
            if self.has_default:
                return self.default
            raise BadQuery(f"missing argument {self.name!r}")
        try:
            return self.convert(raw)
        except (ValueError, TypeError, ArithmeticError):
            raise BadQuery(
                f"argument {self.name!r} must be a {self.type}, not {str(raw)[:40]!r}"
            ) from None


def bind_values(
    arguments: list[Argument], params: Mapping[str, Any], *, strict: bool
) -> dict[str, Any]:
    """Values for the query's placeholders, from the declared arguments only.

    With ``strict=False`` a missing or bad value binds ``None`` (used to
    describe the result columns, where values do not matter).
    """
    values: dict[str, Any] = {}
    for arg in arguments:
        try:
            values[arg.name] = arg.value(params)
        except BadQuery:
            if strict:
                raise
            values[arg.name] = None
    return values
