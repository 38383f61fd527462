"""``ahcore new-plugin NAME``: write a working, installable processor plugin.

The generated distribution is the plugin ``docs/writing-a-processor.md``
walks through, with the shape of the built-in plugins (``plugins/ahcore_md``
and friends)::

    DIR/ahcore_NAME/
      pyproject.toml            distribution "ahcore-NAME", entry point ahcore: NAME
      README.md
      ahcore_NAME/__init__.py
      ahcore_NAME/plugin.py     the hooks: register_processor, on_startup
      ahcore_NAME/processor.py  the Processor: a CSV file parsed once, served as records
      tests/test_NAME.py        make_site + ahcore_client, the plugin passed in-process

``.NAME`` files are read as CSV (a header line, then rows) and served as a
JSON list of records — a real processor to rename and change, not a stub.
The code imports only :mod:`ahcore.api` (the plugin API), and pins the
running kernel's exact version, as every built-in plugin does. A name an
installed plugin already uses is refused (the site could not tell the two
apart). Templates are plain Python strings filled with ``str.format``;
nothing existing is ever overwritten.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import keyword
import re
from dataclasses import dataclass
from pathlib import Path

PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "ahcore-{name}"
version = "0.1.0"
description = "The .{name} processor for ahcore: CSV files served as JSON records"
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
"""ahcore-{name}: ``.{name}`` files (CSV) served as JSON records by :class:`{cls}`.

The module registered in the ``ahcore`` entry-point group is
:mod:`ahcore_{name}.plugin`.
"""

from __future__ import annotations

from ahcore_{name}.processor import PLUGIN_NAME, {cls}

__all__ = ["PLUGIN_NAME", "{cls}"]
'''

PLUGIN = '''\
"""The plugin module registered as ``{name}`` in the ``ahcore`` entry-point group.

It holds the hook implementations, and uses only public hooks and
``ahcore.api``, as every plugin does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ahcore.api import ProcessorSpec, hookimpl
from ahcore_{name}.processor import PLUGIN_NAME, {cls}, parse_max_rows


@hookimpl
def register_processor() -> ProcessorSpec:
    """``.{name}`` files are served by :class:`{cls}`."""
    return ProcessorSpec(PLUGIN_NAME, (".{name}",), {cls})


@hookimpl
def check_settings(settings: Mapping[str, Any]) -> list[str]:
    """Check ``plugins.{name}`` while the app is built, for ``serve`` and ``check`` alike.

    A typo stops ``ahcore serve`` with this one line (and makes ``ahcore
    check`` fail) instead of failing every request.
    """
    try:
        parse_max_rows(settings)
    except ValueError as exc:
        return [str(exc)]
    return []
'''

PROCESSOR = '''\
"""The ``.{name}`` processor: a CSV file parsed once per change, served as records.

The kernel builds one :class:`{cls}` per file and reuses it while the file
is unchanged (same mtime, size and inode); the object is shared by
concurrent requests, so per-request state lives on the ``RequestContext``,
never on ``self``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from ahcore.api import Processor, RequestContext, SiteView

PLUGIN_NAME = "{name}"
DEFAULT_MAX_ROWS = 1000


def parse_max_rows(settings: Mapping[str, Any]) -> int:
    """``max_rows`` of the ``plugins.{name}`` object; ValueError saying what to write."""
    value = settings.get("max_rows", DEFAULT_MAX_ROWS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"plugins.{name}.max_rows: expected a positive integer, got {{json.dumps(value)}}; "
            f"write e.g. 100, or leave it out (default {{DEFAULT_MAX_ROWS}})"
        )
    return value


def max_rows(site: SiteView) -> int:
    """``plugins.{name}.max_rows``: the most records one answer gives (default 1000).

    The value was checked when the app was built (``check_settings``).
    """
    return parse_max_rows(site.plugin_settings(PLUGIN_NAME))


class {cls}(Processor):
    """A ``.{name}`` file: CSV with a header line, served as a JSON list of records."""

    columns: list[str]
    rows: list[dict[str, str]]

    async def load(self) -> None:
        """One-time work per file change: read and parse (in a thread: it blocks)."""
        text = await asyncio.to_thread(
            self.path.read_text, encoding=self.site.config.website.coding
        )
        reader = csv.DictReader(io.StringIO(text), restval="")
        # Values past the header's last column (restkey None) are dropped.
        self.rows = [{{k: v for k, v in row.items() if k is not None}} for row in reader]
        self.columns = list(reader.fieldnames or [])

    async def produce(self, context: RequestContext) -> list[dict[str, str]]:
        """The records for one request (also what ``path_call`` returns).

        A parameter naming a column keeps the rows with that value
        (``?name=ann``); other parameters are ignored.
        """
        params = await context.params()
        rows = self.rows
        for column in self.columns:
            wanted = params.get(column)
            if isinstance(wanted, str) and wanted != "":
                rows = [row for row in rows if row[column] == wanted]
        return rows[: max_rows(context.site)]
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

import pytest

import ahcore_{name}.plugin
from ahcore.api import PluginError

PEOPLE = "name,age\\nann,30\\nbob,41\\n"


def config(settings: Any = True) -> dict[str, Any]:
    return {{
        "website": {{
            "paths": [["$[workdir]$/wwwroot", ""]],
            "processors": [[".{name}", "{name}"]],
        }},
        "plugins": {{"{name}": settings}},
    }}


async def start(make_site, ahcore_client, settings: Any = True):
    site = make_site(config=config(settings), files={{"wwwroot/people.{name}": PEOPLE}})
    return site, await ahcore_client(site, extra_plugins={{"{name}": ahcore_{name}.plugin}})


async def test_rows_as_json_records(make_site, ahcore_client):
    _, client = await start(make_site, ahcore_client)
    resp = await client.get("/people.{name}")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert await resp.json() == [{{"name": "ann", "age": "30"}}, {{"name": "bob", "age": "41"}}]


async def test_a_column_parameter_filters(make_site, ahcore_client):
    _, client = await start(make_site, ahcore_client)
    resp = await client.get("/people.{name}", params={{"name": "ann"}})
    assert await resp.json() == [{{"name": "ann", "age": "30"}}]


async def test_max_rows_setting(make_site, ahcore_client):
    _, client = await start(make_site, ahcore_client, settings={{"max_rows": 1}})
    assert len(await (await client.get("/people.{name}")).json()) == 1


async def test_a_bad_setting_stops_start_up(make_site, ahcore_client):
    with pytest.raises(PluginError, match="plugins.{name}.max_rows: expected a positive integer"):
        await start(make_site, ahcore_client, settings={{"max_rows": "many"}})


async def test_a_changed_file_is_used_at_once(make_site, ahcore_client):
    site, client = await start(make_site, ahcore_client)
    assert len(await (await client.get("/people.{name}")).json()) == 2
    path = site / "wwwroot" / "people.{name}"
    path.write_text("name,age\\ncy,7\\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert await (await client.get("/people.{name}")).json() == [{{"name": "cy", "age": "7"}}]


async def test_missing_file_is_404(make_site, ahcore_client):
    _, client = await start(make_site, ahcore_client)
    assert (await client.get("/nope.{name}")).status == 404
'''

README = """\
# ahcore-{name}

The `.{name}` processor for ahcore: a `.{name}` file is CSV (a header line,
then rows), parsed once per change and served as a JSON list of records.
A query parameter naming a column keeps the rows with that value:

```sh
curl http://127.0.0.1:8080/people.{name}?name=ann     # [{{"name": "ann", "age": "30"}}]
```

Generated by `ahcore new-plugin {name}`; change the processor in
`ahcore_{name}/processor.py` to make it yours (ahcore's
`docs/writing-a-processor.md` walks through every file). The code imports
only `ahcore.api`, the plugin API.

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
  "plugins": {{"{name}": {{"max_rows": 1000}}}}
}}
```

Settings (`plugins.{name}`), checked when the server starts:

| key | default | meaning |
|---|---|---|
| `max_rows` | `1000` | the most records one answer gives |

## Test

```sh
python -m pytest            # from this folder; needs ahcore[testing]
```
"""


class ScaffoldError(Exception):
    """A plugin cannot be written (bad name, a name taken, target exists)."""


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
            f"{package}/processor.py": PROCESSOR.format(**values),
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


def _normalise(dist_name: str) -> str:
    return re.sub(r"[-_.]+", "-", dist_name).lower()


def installed_owner(name: str) -> str | None:
    """What installed already answers to plugin ``name``, said for a person; else ``None``.

    A plugin's name is its entry point's name in the ``ahcore`` group, and
    by convention its distribution is ``ahcore-NAME`` and its package
    ``ahcore_NAME``: a second plugin with any of those would be ambiguous
    in a site's config, or shadow the first on import.
    """
    for ep in importlib.metadata.entry_points(group="ahcore"):
        if ep.name == name:
            dist = ep.dist
            owner = f"{dist.metadata['Name']} {dist.version}" if dist is not None else ep.value
            return f"the installed distribution {owner} (entry point ahcore: {name} = {ep.value})"
    wanted = _normalise(f"ahcore-{name}")
    for dist in importlib.metadata.distributions():
        if _normalise(dist.metadata["Name"] or "") == wanted:
            return f"the installed distribution {dist.metadata['Name']} {dist.version}"
    try:
        found = importlib.util.find_spec(f"ahcore_{name}")
    except (ImportError, ValueError):
        found = None
    if found is not None:
        return f"the importable package ahcore_{name} ({found.origin})"
    return None


def kernel_version() -> str:
    from ahcore import __version__

    return __version__


def write_plugin(name: str, directory: str | Path = ".", version: str | None = None) -> Path:
    """Write plugin ``name`` to ``directory/ahcore_NAME``; return that folder.

    Refuses (:class:`ScaffoldError`) a bad name, a name an installed plugin
    uses (:func:`installed_owner`), or an existing target folder.
    """
    validate_name(name)
    owner = installed_owner(name)
    if owner is not None:
        raise ScaffoldError(
            f"plugin name {name!r} is taken by {owner}; choose another name"
        )
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
