"""Hot reload: config, translations and a cross-worker signal, without a restart.

Sources (as ahserver had them):

- ``conf/config.json`` changed → the config is reloaded; no ``hot_reload``
  event (module caches stay). Changes to plugins, processors or databases
  need a restart and are logged as such; an invalid new config is refused
  and the old one kept.
- an ``i18n/`` file changed → translations reloaded, event ``{'i18n': True}``.
- ``GET /__hot_reload__`` → ``{'source': 'http_endpoint'}`` in this worker
  and ``{'signal': True}`` in every other worker: through a signal file in
  the site's private ``conf/`` folder (or the user's runtime dir), and
  through Redis pub/sub across machines when Redis is configured.

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

log = logging.getLogger("ahcore.hotreload")

ENDPOINT = "/__hot_reload__"
LOOPBACK = ("127.0.0.1", "::1")


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


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
        self.last_trigger = 0.0
        self._task: asyncio.Task[None] | None = None
        self._redis_task: asyncio.Task[None] | None = None
        self.redis: Any = None
        self.redis_url = settings.redis or (
            site.config.website.session_redis.url if site.config.website.session_redis else None
        )
        self.channel = settings.channel
        self._config_key = _stat_key(self.config_path)
        self._i18n_sig = site.translations.signature()
        self._signal_key = _stat_key(self.signal_path)

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
        key = _stat_key(self.config_path)
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
        key = _stat_key(self.signal_path)
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
            log.warning(
                "[hot_reload] config changes to %s take effect after a restart", ", ".join(restart)
            )
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
        self._signal_key = _stat_key(self.signal_path)

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
        """``GET /__hot_reload__``: administrators only, rate-limited."""
        from ahcore.pipeline import explicit_allow

        if self.site.uses_auth():
            if not await explicit_allow(self.site, request, ENDPOINT):
                raise web.HTTPForbidden(text="403: hot reload is for administrators\n")
        elif request.remote not in LOOPBACK:
            raise web.HTTPForbidden(text="403: hot reload is only allowed from loopback\n")
        now = time.monotonic()
        if now - self.last_trigger < self.min_gap:
            raise web.HTTPTooManyRequests(text="429: hot reload was triggered moments ago\n")
        self.last_trigger = now
        event_id = await self.trigger()
        return web.json_response({"ok": True, "event": event_id, "pid": os.getpid()})


def signal_file_path(workdir: Path) -> Path:
    """The signal file: in the site's own ``conf/`` when writable, else a private runtime dir."""
    conf = workdir / "conf"
    if os.access(conf, os.W_OK):
        return conf / ".hot_reload_signal"
    digest = hashlib.sha256(str(workdir).encode()).hexdigest()[:16]
    folder = Path(platformdirs.user_runtime_dir("ahcore"))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder / f"{digest}.signal"
