"""Page reload for ``ahcore serve --dev``: open pages reload when a site file changes.

Only the server that the ``--dev`` parent runs (``--livereload``) installs
this; a production server never has the endpoint nor the script. It adds:

- ``GET /__ahcore_dev__/livereload``: a server-sent-events stream that sends
  ``event: reload`` when a file under a content root changes (polled with
  the hot reloader's :class:`~ahcore.hotreload.FileWatcher`);
- ``GET /__ahcore_dev__/livereload.js``: a few lines that listen to it and
  call ``location.reload()`` — also when the stream comes back after the
  parent restarted the server;
- a ``<script src=…livereload.js>`` tag before ``</body>`` of every HTML
  answer (static files and processor output alike). A script file, not an
  inline script, so a site's ``Content-Security-Policy`` of ``'self'``
  allows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from ahcore.appkeys import SITE_KEY
from ahcore.hotreload import FileWatcher

log = logging.getLogger("ahcore.server")

PREFIX = "/__ahcore_dev__/"
EVENTS = PREFIX + "livereload"
SCRIPT_URL = PREFIX + "livereload.js"
#: Seconds between two looks at the content roots.
INTERVAL = 0.3
SCRIPT = (
    "(function () {\n"
    f'  var source = new EventSource("{EVENTS}"), opened = false;\n'
    '  source.addEventListener("reload", function () { location.reload(); });\n'
    "  // Back after the --dev parent restarted the server: show the new one.\n"
    "  source.onopen = function () { if (opened) { location.reload(); } opened = true; };\n"
    "})();\n"
)
TAG = f'<script src="{SCRIPT_URL}"></script>'.encode()
HTML_SUFFIXES = (".html", ".htm")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LiveReload:
    """The watcher of one application's content roots and its listening pages."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.listeners: set[asyncio.Queue[str | None]] = set()
        self.task: asyncio.Task[None] | None = None
        self.watcher: FileWatcher | None = None

    async def start(self, app: web.Application) -> None:
        site = app[SITE_KEY]
        self.watcher = FileWatcher(trees=[Path(root.folder) for root in site.roots])
        self.task = asyncio.create_task(self._watch(), name="ahcore-livereload")

    async def shutdown(self, app: web.Application) -> None:
        """End every event stream, so a restart does not wait for open pages."""
        for listener in self.listeners:
            listener.put_nowait(None)

    async def cleanup(self, app: web.Application) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _watch(self) -> None:
        assert self.watcher is not None
        while True:
            await asyncio.sleep(INTERVAL)
            changed = await asyncio.to_thread(self.watcher.changed)
            if changed:
                log.info("--dev: %s changed; reloading %d page(s)", changed[0], len(self.listeners))
                for listener in self.listeners:
                    listener.put_nowait("reload")

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        await response.write(b"retry: 500\n\n")
        listener: asyncio.Queue[str | None] = asyncio.Queue()
        self.listeners.add(listener)
        try:
            while (event := await listener.get()) is not None:
                await response.write(f"event: {event}\ndata: {event}\n\n".encode())
        except ConnectionResetError:
            pass  # the page was closed or reloaded
        finally:
            self.listeners.discard(listener)
        return response

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == EVENTS:
            return await self.events(request)
        if request.path == SCRIPT_URL:
            return web.Response(
                text=SCRIPT, content_type="text/javascript", headers={"Cache-Control": "no-store"}
            )
        response = await handler(request)
        return with_script(request, response)


def with_script(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """``response`` with the reload script tag, if it is a whole HTML page."""
    if response.status != 200 or response.headers.get("Content-Encoding"):
        return response
    if isinstance(response, web.FileResponse):
        resolved = request.app[SITE_KEY].resolve(request.path)
        if resolved is None or not str(resolved.path).lower().endswith(HTML_SUFFIXES):
            return response
        page = web.Response(body=Path(resolved.path).read_bytes(), content_type="text/html")
        return with_script(request, page)
    if not isinstance(response, web.Response) or response.content_type != "text/html":
        return response
    body = response.body
    if not isinstance(body, bytes):
        return response
    at = body.lower().rfind(b"</body>")
    response.body = body[:at] + TAG + body[at:] if at >= 0 else body + TAG
    return response


def install_livereload(app: web.Application) -> LiveReload:
    """Add the endpoint, the script and its injection to ``app`` (before it starts)."""
    reload = LiveReload(app)
    # Outermost, so that what the error handling makes of a request gets the tag too.
    app.middlewares.insert(0, reload.middleware)
    app.on_startup.append(reload.start)
    app.on_shutdown.append(reload.shutdown)
    app.on_cleanup.append(reload.cleanup)
    return reload
