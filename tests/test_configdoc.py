"""docs/config.md is generated from the config schema and must not drift from it."""

from __future__ import annotations

from pathlib import Path

import msgspec

from ahcore import configdoc
from ahcore.config import SiteConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def test_docs_config_md_is_the_generator_output() -> None:
    assert DOC.read_text(encoding="utf-8") == configdoc.render(), (
        "docs/config.md is stale; regenerate with: python -m ahcore.configdoc > docs/config.md"
    )


def test_every_field_has_a_description() -> None:
    paths = set(configdoc.field_paths())
    assert paths - set(configdoc.DESCRIPTIONS) == set(), "fields without a description"
    assert set(configdoc.DESCRIPTIONS) - paths == set(), "descriptions of fields that do not exist"


def test_every_top_level_field_is_in_the_tables() -> None:
    text = configdoc.render_tables()
    for field in msgspec.structs.fields(SiteConfig):
        if field.name in configdoc.INTERNAL:
            assert f"`{field.encode_name}`" not in text
        else:
            assert f"| `{field.encode_name}` |" in text


def test_types_and_defaults_come_from_the_schema() -> None:
    text = configdoc.render_tables()
    assert "| `port` | integer | `8080` |" in text
    assert "| `paths` | array of [string, string] | **required** |" in text
    assert "| `website` | object | **required** |" in text
    assert "| `driver` | string | **required** |" in text
    assert "| `hot_reload` | boolean or object | `false` |" in text
    assert "### `databases.*`" in text
    assert configdoc.type_name(dict[str, bool | dict[str, int]]) == (
        "object of (boolean or object of integer)"
    )
