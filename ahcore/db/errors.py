"""The HTTP answers of the data layer, raised where a problem is found.

They are aiohttp HTTP exceptions, so a script that lets one escape gives the
visitor the right status with a short message, and the kernel's error
middleware needs no special case. Messages never carry passwords or
driver tracebacks; drivers log the details.
"""

from __future__ import annotations

from aiohttp import web


class DatabaseUnavailable(web.HTTPServiceUnavailable):
    """503: no connection in time, or the database went away (try again later)."""

    def __init__(self, message: str) -> None:
        super().__init__(text=message + "\n", headers={"Retry-After": "1"})
        self.message = message

    def __str__(self) -> str:
        return self.message


class StatementTimeout(web.HTTPGatewayTimeout):
    """504: a statement ran past its time limit and was stopped by the database."""

    def __init__(self, message: str) -> None:
        super().__init__(text=message + "\n")
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadQuery(web.HTTPBadRequest):
    """400: request input (a name, a sort, a page) the data layer refuses."""

    def __init__(self, message: str) -> None:
        super().__init__(text=message + "\n")
        self.message = message

    def __str__(self) -> str:
        return self.message
