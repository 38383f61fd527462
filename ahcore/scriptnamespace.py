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

Code that looks names up with ``LOAD_NAME`` — a class body, ``eval()``
and ``exec()`` of a string — reads the globals with ``PyDict_GetItem``,
which never calls ``__missing__``. For it the namespace's
``__builtins__`` is a :data:`ScriptNamespace.script_builtins` dict: Python's
builtins, whose own ``__missing__`` answers the site's names (again the site
dict's C ``__getitem__``). The site names that have a builtin's name (ahserver
offers ``int``, ``str``, ``float``, ``type``) are copied over the builtins
in it, so the precedence is the same on both paths.

What differs from the copied namespace: iterating it (``keys()``,
``items()``, ``len()``, ``dict(ns)``, ``**ns``) lists the request's own
names only. ``ns.copy()`` gives the full namespace as a plain
:class:`DictObject`. The site's names are the live namespace, so names a
plugin adds with :func:`ahcore.api.add_globals` show at once.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, ClassVar

from ahcore.dictobject import DictObject

_MISSING = object()


class ScriptNamespace(DictObject):
    """Base of the per-site classes :func:`script_namespace_class` makes; never made itself."""

    __slots__ = ()

    #: The site's global namespace (set on each per-site class).
    site_names: ClassVar[Mapping[str, Any]] = {}
    #: The ``__builtins__`` of a script's globals: Python's builtins, then the site's names.
    script_builtins: ClassVar[dict[str, Any]] = vars(builtins)

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
    keeps the lookup in C. Its :attr:`~ScriptNamespace.script_builtins`
    (made here, see the module's docstring) holds Python's builtins with the
    site names that shadow one copied over them; a name added later with the
    name of a builtin needs a new class (see :func:`shadows_builtin`).
    """
    python_builtins = vars(builtins)
    script_builtins = type(
        "ScriptBuiltins", (dict,), {"__slots__": (), "__missing__": site_names.__getitem__}
    )(python_builtins)
    script_builtins.update({k: v for k, v in site_names.items() if k in python_builtins})
    return type(
        "ScriptNamespace",
        (ScriptNamespace,),
        {
            "__slots__": (),
            "site_names": site_names,
            "__missing__": site_names.__getitem__,
            "script_builtins": script_builtins,
        },
    )


def shadows_builtin(names: Mapping[str, Any]) -> bool:
    """Whether any of ``names`` is also the name of a Python builtin."""
    return not vars(builtins).keys().isdisjoint(names)
