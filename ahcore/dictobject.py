"""DictObject: a dict whose keys are also attributes, as ahserver scripts expect."""

from __future__ import annotations

from typing import Any


class DictObject(dict[str, Any]):
    """A ``dict`` with attribute access (``rec.name`` is ``rec['name']``).

    A missing attribute is ``None``, as in ahserver's DictObject, so scripts can
    write ``if params_kw.page is None``. Nested dicts read through attributes
    come back as DictObjects too.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = self.get(name)
        if type(value) is dict:
            # Converted in place (as appPublic's DictObject did), so a write
            # through the nested view (d.user.name = 'bob') reaches this dict.
            value = DictObject(value)
            self[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def copy(self) -> DictObject:
        return DictObject(self)
