"""The Jinja2 environment proxy files are rendered with, one per application.

It is ahcore-tmpl's :class:`~ahcore_tmpl.UrlEnvironment` over its
:class:`~ahcore_tmpl.UrlLoader` — so ``{% include %}`` and ``{% import %}``
resolve by URL across the site's roots exactly as in ``.tmpl`` files, with
the same refusals — but with output made for JSON instead of HTML:

- no HTML autoescaping (ahserver rendered proxy files without it: an ``&``
  in a URL must stay an ``&``);
- every ``{{ value }}`` is escaped as the *inside of a JSON string*
  (:func:`json_string_content`): a quote, backslash or control character a
  visitor puts in ``params_kw`` cannot end the string and add keys such as
  ``"url"``. Values without those characters render exactly as in
  ahserver. A value meant as JSON itself is written ``{{ value|tojson }}``
  (or ``|safe`` for text that already is JSON), which is passed unchanged.

The environment holds no request state; each render gets its namespace.
"""

from __future__ import annotations

import json
from typing import Any

import jinja2
from ahcore_tmpl import UrlEnvironment, UrlLoader
from aiohttp import web
from markupsafe import Markup

from ahcore.api import SiteView


def json_string_content(value: Any) -> Any:
    """``{{ value }}`` as text safe inside a JSON string; ``Markup`` (``|tojson``, ``|safe``) as is."""
    if isinstance(value, Markup):
        return value
    text = value if isinstance(value, str) else str(value)
    return json.dumps(text, ensure_ascii=False)[1:-1]


ENVIRONMENT: web.AppKey[UrlEnvironment] = web.AppKey("ahcore_proxy.environment", UrlEnvironment)


def make_environment(site: SiteView) -> UrlEnvironment:
    """A fresh environment for ``site`` (async rendering, JSON-string escaping, reload checks)."""
    return UrlEnvironment(
        loader=UrlLoader(site),
        enable_async=True,
        autoescape=False,
        finalize=json_string_content,
        # Includes stay in Jinja2's cache; auto_reload asks the loader's
        # ``uptodate`` so an edited include is used on the next request.
        auto_reload=True,
    )


def environment_for(site: SiteView) -> UrlEnvironment:
    """The environment of ``site``'s application, made on first use if start-up did not."""
    app = site.app
    if app is None:
        raise RuntimeError("ahcore-proxy needs the site's application (ahcore.create_app)")
    env = app.get(ENVIRONMENT)
    if env is None:
        env = app[ENVIRONMENT] = make_environment(site)
    return env


def compile_template(env: UrlEnvironment, source: str, url: str, filename: str) -> jinja2.Template:
    """Compile a proxy file as the template named ``url`` (so its includes are relative to it).

    Not put in Jinja2's cache: the kernel's processor cache keeps the
    processor, and so the template, exactly as long as the file is unchanged.
    """
    code = env.compile(source, url, filename)
    return env.template_class.from_code(env, code, env.make_globals(None), None)
