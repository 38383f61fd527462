"""ahcore.i18n: Accept-Language negotiation and ``key:translation`` files."""

from __future__ import annotations

import logging

import pytest

from ahcore.i18n import Translations, parse_accept_language


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ("", []),
        ("fr", ["fr"]),
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", ["fr-CH", "fr", "en", "de"]),
        ("en;q=0.5, de", ["de", "en"]),  # quality first, not header order
        ("da, en-gb;q=0.8, en;q=0.8", ["da", "en-gb", "en"]),  # ties keep header order
        ("de;q=0, en", ["en"]),  # q=0 means "not this"
        ("de;q=abc, en", ["en"]),  # an unreadable q counts as 0
        (" , ;q=1, x" + "y" * 40, []),  # empty and over-long tags are dropped
        ("de;q=nan, en", ["en"]),
    ],
)
def test_parse_accept_language(header, tags) -> None:
    assert parse_accept_language(header) == tags


@pytest.fixture
def folder(tmp_path):
    i18n = tmp_path / "i18n"
    (i18n / "en").mkdir(parents=True)
    (i18n / "zh-CN").mkdir()
    (i18n / ".hidden").mkdir()
    (i18n / "en" / "a.txt").write_text("Hello:Hello\n# comment: ignored\n\nBye : Goodbye \n")
    (i18n / "en" / "b.txt").write_text("Hello:Hi\nurl:http://x.example:80/\nno separator here\n")
    (i18n / "zh-CN" / "a.txt").write_text("\ufeffHello:你好\n", encoding="utf-8")
    (i18n / ".hidden" / "a.txt").write_text("Hello:hidden\n")
    (i18n / "en" / "notes.md").write_text("Hello:not a translation file\n")
    return i18n


def test_tables_are_loaded_per_language_later_files_win(folder) -> None:
    t = Translations(folder, {})
    assert set(t.messages) == {"en", "zh-cn"}  # dot folders skipped, names lower-cased
    assert t.table("en") == {"Hello": "Hi", "Bye": "Goodbye", "url": "http://x.example:80/"}
    assert t.translate("zh-cn", "Hello") == "你好"  # the BOM is not part of the key


def test_escaped_colons_and_line_breaks_as_appublic_wrote_them(tmp_path) -> None:
    # appPublic's i18n (charEncode/charDecode): a colon in a key is \x3A, a line
    # break \x0A or \x0D, a backslash \\.
    (tmp_path / "i18n" / "en").mkdir(parents=True)
    (tmp_path / "i18n" / "en" / "msg.txt").write_text(
        "Time\\x3A:Time\\x3A now\nTwo lines:one\\x0Atwo\nPath:C\\\\dir\nplain\\n:kept\n"
    )
    t = Translations(tmp_path / "i18n", {})
    assert t.table("en") == {
        "Time:": "Time: now", "Two lines": "one\ntwo", "Path": "C\\dir", "plain\\n": "kept"
    }


def test_a_missing_translation_falls_back_to_the_text(folder) -> None:
    t = Translations(folder, {})
    assert t.translate("en", "Unknown") == "Unknown"
    assert t.translate("fr", "Hello") == "Hello"
    assert t.translate(None, "Hello") == "Hello"
    assert t.table(None) == {}


def test_language_for_tries_mapping_tag_and_primary_subtag(folder) -> None:
    t = Translations(folder, {"zh": "zh-CN", "ZH-TW": "zh-CN"}, default="en")
    assert t.language_for("en-GB") == "en"  # primary subtag
    assert t.language_for("zh-cn") == "zh-cn"  # tag as is, any case
    assert t.language_for("zh") == "zh-cn"  # mapping
    assert t.language_for("zh-TW") == "zh-cn"  # mapping keys are case-insensitive
    assert t.language_for("fr, zh;q=0.1") == "zh-cn"  # the best *available* one
    assert t.language_for("fr") == "en"  # the default
    assert t.language_for(None) == "en"
    no_default = Translations(folder, {})
    assert no_default.language_for("fr") is None
    assert no_default.language_for("en-GB") == "en"  # the primary subtag, not a default


def test_an_unreadable_file_is_logged_and_skipped(folder, caplog) -> None:
    (folder / "en" / "c.txt").write_bytes(b"Bad:\xff\xfe\n")
    with caplog.at_level(logging.WARNING, logger="ahcore.i18n"):
        t = Translations(folder, {})
    assert "cannot read translations" in caplog.text
    assert t.table("en")["Hello"] == "Hi"  # the rest still loaded


def test_missing_folder_means_no_languages(tmp_path) -> None:
    t = Translations(tmp_path / "nope", {}, default="de")
    assert t.messages == {}
    assert t.signature() == ()
    assert t.language_for("de") == "de"  # the default, even without a table


def test_signature_changes_with_any_translation_file_and_load_reloads(folder) -> None:
    t = Translations(folder, {})
    before = t.signature()
    assert len(before) == 4  # the .txt files; notes.md does not count
    (folder / "en" / "a.txt").write_text("Hello:Hello there, a longer text\n")
    assert t.signature() != before
    assert t.translate("en", "Hello") == "Hi"  # nothing changes until load()
    (folder / "en" / "b.txt").unlink()
    t.load()
    assert t.translate("en", "Hello") == "Hello there, a longer text"
    assert "Bye" not in t.table("en")
