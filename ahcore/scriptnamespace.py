"""A script's globals: the request's own names, the site's names found by lookup.

:meth:`ahcore.context.RequestContext.namespace` copies the site's global
names (about 110 on a site with the built-in plugins) into a fresh dict for
every request. For a ``.dspy`` script that copy is most of the cost of its
namespace: each copy and each free touches the reference count of every
one of those objects, spread over the heap.

A :class:`ScriptNamespace` holds only what belongs to the request (the
``request_namespace`` hooks' values, ``request``, ``params_kw``,
``__builtins__``, and whatever the script itself stores with ``global``)
and answers any other name from the site's namespace, which it does not
copy: ``ns[name]`` and a script's global lookups through ``__missing__``
(the site dict's own C ``__getitem__``, so a global lookup costs one C
call more, no Python frame), ``ns.get(name)``, ``name in ns`` and
``ns.name`` through the overrides below. A request's own name wins over a
site name, a site name over a Python builtin, as in the copied namespace.

What differs from the copied namespace: iterating it (``keys()``,
``items()``, ``len()``, ``dict(ns)``, ``**ns``) lists the request's own
names only. ``ns.copy()`` gives the full namespace as a plain
:class:`DictObject`. The site's names are the live namespace, so names a
plugin adds with :func:`ahcore.api.add_globals` show at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ahcore.dictobject import DictObject

_MISSING = object()


class ScriptNamespace(DictObject):
    """Base of the per-site classes :func:`script_namespace_class` makes; never made itself."""

    __slots__ = ()

    #: The site's global namespace (set on each per-site class).
    site_names: ClassVar[Mapping[str, Any]] = {}

    def get(self, key: str, default: Any = None) -> Any:
        value = dict.get(self, key, _MISSING)
        if value is _MISSING:
            return self.site_names.get(key, default)
        return value

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.site_names

    def copy(self) -> DictObject:
        """The full namespace: the site's names with the request's own over them."""
        full = DictObject(self.site_names)
        full.update(self)
        return full


def script_namespace_class(site_names: dict[str, Any]) -> type[ScriptNamespace]:
    """A :class:`ScriptNamespace` class answering missing names from ``site_names``.

    One class per site namespace (the site keeps it): ``__missing__`` must
    be a class attribute, and making it the dict's bound ``__getitem__``
    keeps the lookup in C.
    """
    return type(
        "ScriptNamespace",
        (ScriptNamespace,),
        {"__slots__": (), "site_names": site_names, "__missing__": site_names.__getitem__},
    )
