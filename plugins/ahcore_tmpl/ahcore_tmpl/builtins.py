"""Python's builtins as template globals, as ahserver gave them, with ``print`` to the log.

ahserver copied every public builtin into the namespace of scripts and
templates. Templates get them here as globals of the site's Jinja2
environment (scripts have them anyway), so ``{{ len(rows) }}``,
``{{ max(a, b) }}`` or ``{{ enumerate(items) | list }}`` work. Request
values still win over them: a namespace name shadows a global.

Left out, on purpose:

- ``open`` — templates open files with ``openfile``, which keeps to the site;
- ``eval``, ``exec``, ``compile`` — a template that evaluates text is one
  request parameter away from running a visitor's code (``json.loads``
  reads data);
- ``input``, ``breakpoint``, ``help``, ``exit``, ``quit``, ``copyright``,
  ``credits``, ``license`` — interactive: they would block or stop a worker;
- ``globals``, ``locals`` — they would show this module's names, not the
  template's.

``print(*values, sep=' ')`` writes one INFO line to the site logger (named
by ``logger.name``) instead of the server's stdout, and returns ``None`` as
``print`` does (so ``{{ print(x) }}`` renders ``None``, as in ahserver).
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable
from typing import Any

from ahcore.api import SiteView

LEFT_OUT = frozenset(
    {
        "open", "eval", "exec", "compile",
        "input", "breakpoint", "help", "exit", "quit", "copyright", "credits", "license",
        "globals", "locals",
    }
)  # fmt: skip


def make_print(site: SiteView) -> Callable[..., None]:
    """``print`` for the templates of ``site``: to its logger, at INFO."""

    def print(*values: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None,
              flush: bool = False) -> None:  # fmt: skip
        if file is not None:  # an explicit stream (a StringIO) is the template's business
            builtins.print(*values, sep=sep, end=end, file=file, flush=flush)
            return
        logger = logging.getLogger(site.config.logger.name or "ahcore")
        if logger.isEnabledFor(logging.INFO):
            text = (" " if sep is None else sep).join(str(v) for v in values)
            logger.info("%s", text, stacklevel=2)

    return print


def template_builtins(site: SiteView) -> dict[str, Any]:
    """The public builtins minus :data:`LEFT_OUT`, with the site's ``print``."""
    names = {
        name: getattr(builtins, name)
        for name in dir(builtins)
        if not name.startswith("_") and name not in LEFT_OUT
    }
    names["print"] = make_print(site)
    return names
