"""What a template gets for a name nobody defined: ``plugins.tmpl.undefined``.

``"empty"`` (the default, as in ahserver and Jinja2): an undefined name
renders as an empty string, loops over nothing and is false. With
``--debug``, rendering or looping over one is logged once per name and
template line — ``template /srv/site/wwwroot/index.tmpl, line 7: 'usr' is
undefined (rendered as '')`` — so a typo is found without making the page
fail. ``"strict"``: using an undefined name in any way but ``is defined``
is an error (a 500, or the debug page pointing at the template line).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jinja2

from ahcore.api import ConfigError, SiteView

PLUGIN_NAME = "tmpl"
UNDEFINED_MODES = ("empty", "strict")
#: At most this many distinct (name, template, line) reports per site.
MAX_REPORTS = 10_000

log = logging.getLogger("ahcore_tmpl")


def undefined_mode(site: SiteView) -> str:
    """``plugins.tmpl.undefined`` of ``site``; a bad value stops start-up with a clear message."""
    settings = site.plugin_settings(PLUGIN_NAME)
    mode = settings.get("undefined", "empty")
    if mode not in UNDEFINED_MODES:
        raise ConfigError(
            [
                f"plugins.tmpl.undefined: {mode!r} is not one of "
                f"{', '.join(repr(m) for m in UNDEFINED_MODES)} "
                "(\"empty\": an undefined name renders as ''; \"strict\": it is an error)"
            ],
            source=site.workdir / "conf" / "config.json",
        )
    return str(mode)


def template_location() -> tuple[str, int] | None:
    """The template file and line being rendered, from the calling frames."""
    frame = inspect.currentframe()
    while frame is not None:
        template = frame.f_globals.get("__jinja_template__")
        if isinstance(template, jinja2.Template):
            name = template.filename or template.name or "<template>"
            return name, template.get_corresponding_lineno(frame.f_lineno)
        frame = frame.f_back
    return None


def undefined_class(site: SiteView) -> type[jinja2.Undefined]:
    """The undefined type for ``site``'s environments (a class per site: its reports are its own)."""
    if undefined_mode(site) == "strict":
        return jinja2.StrictUndefined
    if not site.debug:
        return jinja2.Undefined
    reported: set[tuple[str, str, int]] = set()

    def report(undefined: jinja2.Undefined) -> None:
        where = template_location()
        file, line = where if where is not None else ("<template>", 0)
        message = undefined._undefined_message  # noqa: SLF001 - Jinja2's documented hook for subclasses
        key = (message, file, line)
        if key in reported or len(reported) >= MAX_REPORTS:
            return
        reported.add(key)
        log.warning("template %s, line %d: %s (rendered as '')", file, line, message)

    class ReportingUndefined(jinja2.Undefined):
        """Jinja2's Undefined, reporting each use once per name and template line (``--debug``)."""

        __slots__ = ()

        def __str__(self) -> str:
            report(self)
            return ""

        def __iter__(self) -> Iterator[Any]:
            report(self)
            yield from ()

        async def __aiter__(self) -> AsyncIterator[Any]:
            report(self)
            for _ in ():
                yield

    return ReportingUndefined
