"""Hot reload: config, translations and a cross-worker signal, without a restart.

Sources (as ahserver had them):

- ``conf/config.json`` changed → the config is reloaded; no ``hot_reload``
  event (module caches stay). Changes to plugins, processors or databases
  need a restart and are logged as such; an invalid new config is refused
  and the old one kept.
- an ``i18n/`` file changed → translations reloaded, event ``{'i18n': True}``.
- ``POST /__hot_reload__`` → ``{'source': 'http_endpoint'}`` in this worker
  and ``{'signal': True}`` in every other worker: through a signal file in
  the site's private ``conf/`` folder (or the user's runtime dir), and
  through Redis pub/sub across machines when Redis is configured.

The endpoint (SPEC §10) answers POST only (GET and the rest: 405 with
``Allow: POST``, so a link or an image tag cannot trigger it), refuses
cross-site requests (``Sec-Fetch-Site`` ``cross-site``/``same-site``, or an
``Origin`` that is not the site's: 403), and runs for an administrator —
some ``auth_check`` explicitly allows its path — or for a caller sending
``hot_reload.token`` in the ``X-Hot-Reload-Token`` header (compared in
constant time). Everyone else gets 401 (no credentials) or 403; there is no
loopback exemption, since behind a reverse proxy every request comes from
loopback. The rate limit counts only callers that passed all of this, so
a stranger can neither trigger reloads nor, by trying, lock out the admin.

Changed processor files need none of this: processors are rebuilt on the
next request by the processor cache.

The watcher polls a handful of paths with ``os.stat`` every ``interval``
seconds. A native watcher (inotify via watchfiles) was considered; for a few
files polled at a configured interval it adds a dependency and a thread for
no gain, and polling behaves the same on every filesystem (NFS included).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections import deque
from pathlib import Path
from typing import Any

import platformdirs
from aiohttp import web

from ahcore.config import CONFIG_RELPATH, ConfigError, load_config
from ahcore.forwarded import client_view

log = logging.getLogger("ahcore.hotreload")

ENDPOINT = "/__hot_reload__"
#: The header a deploy script sends ``hot_reload.token`` in. Not ``Authorization:
#: Bearer``: that one is ahcore-rbac's API keys, and a custom header is one a
#: browser cannot add to a cross-site request without the site's consent (CORS).
TOKEN_HEADER = "X-Hot-Reload-Token"
#: A token shorter than this is warned about at start (it is a password).
MIN_TOKEN_BYTES = 32


def stat_key(path: Path) -> tuple[int, int] | None:
    """What tells a change of ``path``: its modification time and size (None: missing)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


#: Folders a :class:`FileWatcher` never walks into.
SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules"})


class FileWatcher:
    """Polls files, and the files of folder trees, with ``os.stat``; says what changed.

    The same polling as the hot reloader's, for ``ahcore serve --dev``:
    its parent watches the config and Python code, its server the site's
    content roots. ``suffixes`` limits the files of ``trees`` (``(".py",)``);
    hidden folders and ``__pycache__`` are skipped. :meth:`changed` returns
    the paths that appeared, went or changed since the previous call.
    """

    def __init__(
        self,
        files: list[Path] | tuple[Path, ...] = (),
        trees: list[Path] | tuple[Path, ...] = (),
        suffixes: tuple[str, ...] | None = None,
    ) -> None:
        self.files = list(files)
        self.trees = list(trees)
        self.suffixes = suffixes
        self._seen = self.snapshot()

    def snapshot(self) -> dict[str, tuple[int, int] | None]:
        """Every watched path and its :func:`stat_key`."""
        keys: dict[str, tuple[int, int] | None] = {str(p): stat_key(p) for p in self.files}
        for tree in self.trees:
            for folder, dirs, names in os.walk(tree):
                dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIPPED_FOLDERS]
                for name in names:
                    if self.suffixes is None or name.endswith(self.suffixes):
                        path = os.path.join(folder, name)
                        keys[path] = stat_key(Path(path))
        return keys

    def changed(self) -> list[str]:
        """The paths changed since the last call (or since the watcher was made)."""
        now = self.snapshot()
        seen, self._seen = self._seen, now
        return sorted(p for p in now.keys() | seen.keys() if now.get(p) != seen.get(p))


class HotReloader:
    """One per application: watches files, serves the endpoint, fans out signals."""

    def __init__(self, site: Any) -> None:
        self.site = site
        settings = site.config.hot_reload_settings
        self.interval = max(0.05, settings.interval)
        self.min_gap = settings.rate_limit
        self.config_path = site.workdir / CONFIG_RELPATH
        self.signal_path = signal_file_path(site.workdir)
        self.seen_events: deque[str] = deque(maxlen=256)
        # -inf, not 0: monotonic() may be smaller than rate_limit after a boot.
        self.last_trigger = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._redis_task: asyncio.Task[None] | None = None
        self.redis: Any = None
        self.redis_url = settings.redis or (
            site.config.website.session_redis.url if site.config.website.session_redis else None
        )
        self.channel = settings.channel
        self.token = settings.token.encode("utf-8") if settings.token else None
        if self.token is not None and len(self.token) < MIN_TOKEN_BYTES:
            log.warning(
                "[hot_reload] hot_reload.token is %d bytes; use at least %d "
                '(python -c "import secrets; print(secrets.token_urlsafe(32))")',
                len(self.token), MIN_TOKEN_BYTES,
            )
        self._config_key = stat_key(self.config_path)
        self._i18n_sig = site.translations.signature()
        self._signal_key = stat_key(self.signal_path)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="ahcore-hot-reload")
        if self.redis_url:
            import redis.asyncio as aioredis

            self.redis = aioredis.from_url(self.redis_url)
            self._redis_task = asyncio.create_task(self._listen(), name="ahcore-hot-reload-redis")

    async def stop(self) -> None:
        for task in (self._task, self._redis_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.redis is not None:
            await self.redis.aclose()

    # ------------------------------------------------------------ watching

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_once()
            except Exception:
                log.exception("[hot_reload] check failed")

    async def check_once(self) -> None:
        """Look at every source once; dispatch what changed."""
        key = stat_key(self.config_path)
        if key != self._config_key:
            self._config_key = key
            log.debug("[hot_reload] changed: %s", self.config_path)
            self.reload_config()
        sig = self.site.translations.signature()
        if sig != self._i18n_sig:
            self._i18n_sig = sig
            self.site.translations.load()
            log.debug("[hot_reload] i18n changed, dispatching hot_reload event")
            await self.site.hot_reload({"i18n": True})
        key = stat_key(self.signal_path)
        if key != self._signal_key:
            self._signal_key = key
            event_id = self._read_signal()
            if event_id and self._first_time(event_id):
                log.debug("[hot_reload] signal file changed, triggering reload")
                await self.site.hot_reload({"signal": True})

    def reload_config(self) -> None:
        try:
            new = load_config(self.site.workdir)
            restart = self.site.apply_config(new)  # a missing content root: ConfigError
        except ConfigError as exc:
            log.error("[hot_reload] new config refused, keeping the old one:\n%s", exc)
            return
        if restart:
            log.warning("[hot_reload] %s changed: restart to apply", ", ".join(restart))
        log.info("[hot_reload] config reloaded (no hot_reload event, as in ahserver)")

    # ------------------------------------------------------------ fan-out

    def _first_time(self, event_id: str) -> bool:
        if event_id in self.seen_events:
            return False
        self.seen_events.append(event_id)
        return True

    def _read_signal(self) -> str | None:
        try:
            data = json.loads(self.signal_path.read_text())
            return str(data["event"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_signal(self, event_id: str) -> None:
        payload = json.dumps({"event": event_id, "pid": os.getpid(), "time": time.time()})
        tmp = self.signal_path.with_name(self.signal_path.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
        os.replace(tmp, self.signal_path)
        self._signal_key = stat_key(self.signal_path)

    async def trigger(self) -> str:
        """Reload here, then tell the other workers (signal file) and machines (Redis)."""
        event_id = secrets.token_hex(8)
        self.seen_events.append(event_id)
        await self.site.hot_reload({"source": "http_endpoint"})
        self._write_signal(event_id)
        if self.redis is not None:
            await self.redis.publish(self.channel, event_id)
        return event_id

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data = message.get("data")
                    event_id = data.decode() if isinstance(data, bytes) else str(data)
                    if self._first_time(event_id):
                        await self.site.hot_reload({"signal": True})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("[hot_reload] redis listener failed; retrying")
                await asyncio.sleep(1)

    # ------------------------------------------------------------ endpoint

    async def endpoint(self, request: web.Request) -> web.Response:
        """``POST /__hot_reload__``: same-site, administrators or the token, rate-limited.

        Registered for every method so that anything but POST gets a 405
        here instead of falling through to the site's files.
        """
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(
                request.method, ["POST"], text="405: hot reload answers POST only\n"
            )
        reason = _cross_site(request)
        if reason is not None:
            raise web.HTTPForbidden(text=f"403: {reason}\n")
        await self._authorise(request)
        # Only authorised callers reach the rate limit: others never spend it.
        now = time.monotonic()
        if now - self.last_trigger < self.min_gap:
            raise web.HTTPTooManyRequests(text="429: hot reload was triggered moments ago\n")
        self.last_trigger = now
        event_id = await self.trigger()
        return web.json_response({"ok": True, "event": event_id, "pid": os.getpid()})

    async def _authorise(self, request: web.Request) -> None:
        """Return when the caller holds the token or is an administrator; else 401/403."""
        from ahcore.access import explicit_allow
        from ahcore.session import current_user

        offered = request.headers.get(TOKEN_HEADER)
        if offered is not None:
            if self.token is not None and hmac.compare_digest(
                offered.encode("utf-8", "surrogateescape"), self.token
            ):
                return
            raise web.HTTPForbidden(text="403: wrong hot-reload token\n")
        if self.site.uses_auth() and await explicit_allow(self.site, request, ENDPOINT):
            return
        if self.site.uses_auth() and await current_user(request) is not None:
            raise web.HTTPForbidden(text="403: hot reload is for administrators\n")
        raise web.HTTPUnauthorized(
            text=f"401: hot reload needs an administrator's login or the {TOKEN_HEADER} header\n"
        )


def _cross_site(request: web.Request) -> str | None:
    """Why a request to the endpoint looks cross-site, or None.

    Stricter than the kernel's CSRF check, which looks only at requests
    carrying the session cookie: here every caller is checked, and a
    ``same-site`` request (a sibling subdomain) is refused too. A request
    with neither header (a deploy script) passes on to authorisation.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site in ("cross-site", "same-site"):
        return f"hot reload refuses {fetch_site} requests (Sec-Fetch-Site)"
    origin = request.headers.get("Origin")
    if origin is not None:
        view = client_view(request)
        if origin.lower() != f"{view.scheme}://{view.host}".lower():
            return "hot reload refuses cross-origin requests (Origin does not match this site)"
    return None


def signal_file_path(workdir: Path) -> Path:
    """The signal file: in the site's own ``conf/`` when writable, else a private runtime dir."""
    conf = workdir / "conf"
    if os.access(conf, os.W_OK):
        return conf / ".hot_reload_signal"
    digest = hashlib.sha256(str(workdir).encode()).hexdigest()[:16]
    folder = Path(platformdirs.user_runtime_dir("ahcore"))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder / f"{digest}.signal"
