"""The upstream request a proxy file describes: rendered JSON → :class:`Upstream`.

A proxy file renders to a JSON object (ahserver's keys first)::

    {"url": "http://127.0.0.1:9000/api/items",   required, http or https
     "method": "GET",                             default: the visitor's
     "headers": {"X-Api-Key": "…"},               added to the forwarded ones
     "params": {"page": 2},                       added to the URL's query
     "user": "svc", "password": "…",              HTTP Basic auth upstream
     "data": {"any": "json"} or "text",           replaces the visitor's body
     "forward_cookies": false,                    Cookie up, Set-Cookie down
     "forward_authorization": false}              the visitor's Authorization

Other keys are ignored (as ahserver ignored them). Anything wrong with
it is the site owner's bug, so :class:`DescriptionError`
becomes a 500 for the visitor and a log line naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from yarl import URL

#: Methods a proxy file answers, and may send upstream.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

#: "data" was not given: the visitor's body is forwarded.
NO_DATA: Any = object()


class DescriptionError(Exception):
    """The rendered file is not a usable description (the message names the file)."""


@dataclass(frozen=True)
class Upstream:
    """One upstream request, checked for shape (not yet against the allow-list)."""

    url: URL
    method: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: list[tuple[str, str]] = field(default_factory=list)
    user: str | None = None
    password: str | None = None
    data: Any = NO_DATA
    forward_cookies: bool = False
    forward_authorization: bool = False


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def parse_description(text: str, filename: str) -> Upstream:
    """Parse the rendered text of ``filename``; :class:`DescriptionError` if unusable."""

    def bad(problem: str) -> DescriptionError:
        return DescriptionError(f"{filename}: proxy description {problem}")

    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise bad(f"is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise bad(f"must be a JSON object, got {type(raw).__name__}")
    url_text = raw.get("url")
    if not isinstance(url_text, str) or not url_text.strip():
        raise bad('lacks "url" (a string)')
    try:
        url = URL(url_text.strip())
    except ValueError as exc:
        raise bad(f'has an invalid "url": {exc}') from None
    if url.user is not None or url.password is not None:
        raise bad('"url" must not carry credentials (use "user" and "password")')

    method = raw.get("method")
    if method is not None:
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise bad(f'"method" must be one of {", ".join(METHODS)}, got {method!r}')
        method = method.upper()

    headers_raw = raw.get("headers", {})
    if not isinstance(headers_raw, dict):
        raise bad('"headers" must be an object of name: value')
    headers: dict[str, str] = {}
    for name, value in headers_raw.items():
        text_value = _scalar(value)
        if text_value is None or not name or any(c in name for c in ":\r\n \t"):
            raise bad(f'"headers" has an unusable entry {name!r}: {value!r}')
        if "\r" in text_value or "\n" in text_value:
            raise bad(f'"headers" value of {name!r} contains a line break')
        headers[name] = text_value

    params_raw = raw.get("params", {})
    if params_raw is None:
        params_raw = {}
    if not isinstance(params_raw, dict):
        raise bad('"params" must be an object of name: value or name: [values]')
    params: list[tuple[str, str]] = []
    for name, value in params_raw.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            text_value = _scalar(item)
            if text_value is None:
                raise bad(f'"params" value of {name!r} must be text or a number: {item!r}')
            params.append((name, text_value))

    user, password = raw.get("user") or None, raw.get("password") or None
    if (user is None) != (password is None):
        raise bad('needs both "user" and "password" for upstream auth')
    if user is not None and not (isinstance(user, str) and isinstance(password, str)):
        raise bad('"user" and "password" must be strings')

    flags = {}
    for flag in ("forward_cookies", "forward_authorization"):
        value = raw.get(flag, False)
        if not isinstance(value, bool):
            raise bad(f'"{flag}" must be true or false')
        flags[flag] = value

    return Upstream(
        url=url,
        method=method,
        headers=headers,
        params=params,
        user=user,
        password=password,
        data=raw["data"] if "data" in raw else NO_DATA,
        **flags,
    )
