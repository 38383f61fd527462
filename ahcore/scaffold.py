"""``ahcore new-plugin NAME``: write a working, installable processor plugin.

The generated distribution has the shape of the built-in plugins
(``plugins/ahcore_dspy`` and friends)::

    DIR/ahcore_NAME/
      pyproject.toml          distribution "ahcore-NAME", entry point ahcore: NAME
      README.md
      ahcore_NAME/__init__.py
      ahcore_NAME/plugin.py   register_processor for ".NAME" and the Processor subclass
      tests/test_NAME.py      make_site + ahcore_client, the plugin passed in-process

It pins the running kernel's exact version, as every built-in plugin does.
Templates are plain Python strings filled with ``str.format``; nothing
existing is ever overwritten.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from pathlib import Path

PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "ahcore-{name}"
version = "0.1.0"
description = "The .{name} processor for ahcore"
readme = "README.md"
requires-python = ">=3.10"
# Exact pin on purpose: the kernel's local version label exists only in its
# source tree, so no install can pull the unrelated "ahcore" from the index.
dependencies = ["ahcore=={kernel_version}"]

[project.optional-dependencies]
testing = ["ahcore[testing]=={kernel_version}"]

# The entry name ("{name}") is the name a site uses in config:
# "processors": [[".{name}", "{name}"]] and "plugins": {{"{name}": true}}.
[project.entry-points.ahcore]
{name} = "ahcore_{name}.plugin"

[tool.setuptools.packages.find]
include = ["ahcore_{name}*"]

[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
testpaths = ["tests"]
"""

INIT = '''\
"""ahcore-{name}: ``.{name}`` files served by :class:`{cls}`.

The module registered in the ``ahcore`` entry-point group is
:mod:`ahcore_{name}.plugin`.
"""

from __future__ import annotations

from ahcore_{name}.plugin import PLUGIN_NAME, {cls}

__all__ = ["PLUGIN_NAME", "{cls}"]
'''

PLUGIN = '''\
"""The plugin module registered as ``{name}`` in the ``ahcore`` entry-point group.

It uses only public hooks: ``register_processor`` declares the processor
for ``.{name}`` files. The kernel builds one :class:`{cls}` per file and
reuses it while the file is unchanged; the object is shared by concurrent
requests, so per-request state lives on the ``RequestContext``.
"""

from __future__ import annotations

from typing import Any

from ahcore.api import Processor, ProcessorSpec, RequestContext, hookimpl

PLUGIN_NAME = "{name}"


class {cls}(Processor):
    """A ``.{name}`` file: its lines, read once per change, served as JSON."""

    lines: list[str]

    async def load(self) -> None:
        """One-time work per file change: read (and parse, compile...) the file."""
        text = self.path.read_text(encoding=self.site.config.website.coding)
        self.lines = [line for line in text.splitlines() if line.strip()]

    async def produce(self, context: RequestContext) -> Any:
        """The value for one request (also what ``path_call`` returns)."""
        params = await context.params()
        settings = context.site.plugin_settings(PLUGIN_NAME)
        lines = self.lines
        if params.get("q"):
            lines = [line for line in lines if str(params.q) in line]
        if settings.get("upper"):
            lines = [line.upper() for line in lines]
        return {{"file": context.url, "count": len(lines), "lines": lines}}


@hookimpl
def register_processor() -> ProcessorSpec:
    """``.{name}`` files are served by :class:`{cls}`."""
    return ProcessorSpec(PLUGIN_NAME, (".{name}",), {cls})
'''

TEST = '''\
"""ahcore-{name} against an in-process server (``make_site`` + ``ahcore_client``).

The fixtures come from ahcore's pytest plugin (``pip install ahcore[testing]``).
The plugin module is passed in-process with ``extra_plugins``, so the tests
run without installing the distribution; the config must still enable it.
"""

from __future__ import annotations

import os
from typing import Any

import ahcore_{name}.plugin

SOURCE = "apple pie\\nbanana split\\n\\napple crumble\\n"


def config(settings: Any = True) -> dict[str, Any]:
    return {{
        "website": {{
            "paths": [["$[workdir]$/wwwroot", ""]],
            "processors": [[".{name}", "{name}"]],
        }},
        "plugins": {{"{name}": settings}},
    }}


async def start(make_site, ahcore_client, settings: Any = True, files=None):
    site = make_site(config=config(settings), files=files or {{"wwwroot/a.{name}": SOURCE}})
    return site, await ahcore_client(site, extra_plugins={{"{name}": ahcore_{name}.plugin}})


async def test_served_as_json(make_site, ahcore_client):
    _, client = await start(make_site, ahcore_client)
    resp = await client.get("/a.{name}")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert await resp.json() == {{
        "file": "/a.{name}",
        "count": 3,
        "lines": ["apple pie", "banana split", "apple crumble"],
    }}


async def test_parameters_and_settings(make_site, ahcore_client):
    _, client = await start(make_site, ahcore_client, settings={{"upper": True}})
    resp = await client.get("/a.{name}", params={{"q": "apple"}})
    assert (await resp.json())["lines"] == ["APPLE PIE", "APPLE CRUMBLE"]


async def test_a_changed_file_is_used_at_once(make_site, ahcore_client):
    site, client = await start(make_site, ahcore_client)
    assert (await (await client.get("/a.{name}")).json())["count"] == 3
    path = site / "wwwroot" / "a.{name}"
    path.write_text("one line\\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert (await (await client.get("/a.{name}")).json())["lines"] == ["one line"]


async def test_missing_file_is_404(make_site, ahcore_client):
    _, client = await start(make_site, ahcore_client)
    assert (await client.get("/nope.{name}")).status == 404
'''

README = """\
# ahcore-{name}

The `.{name}` processor for ahcore: each
non-blank line of a `.{name}` file, read once per change and served as JSON
`{{"file", "count", "lines"}}`. `?q=text` keeps the lines containing `text`.

Generated by `ahcore new-plugin {name}`; replace the processor in
`ahcore_{name}/plugin.py` with your own (see ahcore's
`docs/writing-a-processor.md`).

## Install

With the kernel, from local paths, in one command (the plugin pins
`ahcore=={kernel_version}` exactly):

```sh
pip install /path/to/ahcore ./ahcore_{name}
```

## Enable

```json
{{
  "website": {{"paths": [["$[workdir]$/wwwroot", ""]], "processors": [[".{name}", "{name}"]]}},
  "plugins": {{"{name}": {{"upper": false}}}}
}}
```

Settings (`plugins.{name}`):

| key | default | meaning |
|---|---|---|
| `upper` | `false` | serve the lines in upper case |

## Test

```sh
python -m pytest            # from this folder; needs ahcore[testing]
```
"""


class ScaffoldError(Exception):
    """A plugin cannot be written (bad name, target exists)."""


@dataclass(frozen=True)
class Scaffold:
    """The files of a new plugin, relative to its distribution folder."""

    name: str
    kernel_version: str

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_") if part) + "Processor"

    def files(self) -> dict[str, str]:
        values = {"name": self.name, "cls": self.class_name, "kernel_version": self.kernel_version}
        package = f"ahcore_{self.name}"
        return {
            "pyproject.toml": PYPROJECT.format(**values),
            "README.md": README.format(**values),
            f"{package}/__init__.py": INIT.format(**values),
            f"{package}/plugin.py": PLUGIN.format(**values),
            f"tests/test_{self.name}.py": TEST.format(**values),
        }


def validate_name(name: str) -> str:
    """``name`` if usable as the plugin name, the suffix and part of a module name."""
    if not name.isidentifier() or not name.isascii():
        raise ScaffoldError(f"plugin name {name!r} is not a Python identifier")
    if keyword.iskeyword(name):
        raise ScaffoldError(f"plugin name {name!r} is a Python keyword")
    if name.startswith("_"):
        raise ScaffoldError(f"plugin name {name!r} must not start with '_'")
    return name


def kernel_version() -> str:
    from ahcore import __version__

    return __version__


def write_plugin(name: str, directory: str | Path = ".", version: str | None = None) -> Path:
    """Write plugin ``name`` to ``directory/ahcore_NAME``; return that folder.

    Refuses (:class:`ScaffoldError`) a bad name or an existing target folder.
    """
    validate_name(name)
    target = Path(directory) / f"ahcore_{name}"
    if target.exists():
        raise ScaffoldError(f"{target} already exists; not overwriting it")
    scaffold = Scaffold(name, version or kernel_version())
    for rel, text in scaffold.files().items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(text)
    return target
