"""``openfile``, ``folderInfo`` and ``uriop`` (ahcore.sitefiles): only the site's own files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ahcore import Processor, ProcessorSpec, hookimpl
from ahcore.app import create_app
from ahcore.appkeys import get_site
from ahcore.sitefiles import (
    FileOutZone,
    SiteFileNotFound,
    SiteFiles,
    URIOp,
    URIopException,
    check_mode,
    folder_info,
)


class PageProcessor(Processor):
    """Stands for any processor: its files are ones the site runs."""


class PagePlugin:
    @hookimpl
    def register_processor(self):
        return ProcessorSpec("page", (".tmpl",), PageProcessor)


CONFIG = {
    "website": {
        "paths": [["$[workdir]$/wwwroot", ""], ["$[workdir]$/docs", "/docs"]],
        "processors": [[".tmpl", "page"]],
    },
    "plugins": {"page": True},
}
FILES = {
    "wwwroot/notes.txt": "wwwroot notes",
    "wwwroot/sub/deep.txt": "deep",
    "wwwroot/page.tmpl": "{{ 1 }}",
    "wwwroot/.hidden": "secret",
    "docs/manual.txt": "manual",
    "data/list.csv": "a,b\n",
    ".session_secret": "s" * 32,
}


@pytest.fixture
def site(make_site, tmp_path: Path):
    workdir = make_site(config=CONFIG, files=FILES)
    (tmp_path / "outside.txt").write_text("not the site's")
    return get_site(create_app(workdir, extra_plugins={"page": PagePlugin()}))


def test_urls_are_looked_up_in_the_content_roots(site) -> None:
    files = SiteFiles(site)
    with files.open("/notes.txt") as f:
        assert f.read() == "wwwroot notes"
    with files.open("/docs/manual.txt", "rb") as f:
        assert f.read() == b"manual"
    with files.open("/sub/deep.txt") as f:
        assert f.read() == "deep"


def test_relative_names_are_under_the_work_directory(site) -> None:
    with SiteFiles(site).open("data/list.csv") as f:
        assert f.read() == "a,b\n"


def test_writing_a_new_file(site) -> None:
    files = SiteFiles(site)
    with files.open("/made.txt", "w") as f:
        f.write("new")
    assert (site.workdir / "wwwroot" / "made.txt").read_text() == "new"
    with files.open("data/log.txt", "a") as f:
        f.write("line\n")
    assert (site.workdir / "data" / "log.txt").read_text() == "line\n"


@pytest.mark.parametrize(
    "name",
    [
        "/../conf/config.json",  # ahserver opened this one
        "../outside.txt",
        "/sub/../../conf/config.json",
        "conf/config.json",
        "/.hidden",
        ".session_secret",
        "wwwroot/.hidden",
        "..\\outside.txt",
        "/notes.txt\x00.png",
    ],
)
def test_outside_names_are_refused_and_nothing_is_opened(site, name) -> None:
    with pytest.raises(FileOutZone) as caught:
        SiteFiles(site).open(name)
    assert caught.value.status == 403 and isinstance(caught.value, PermissionError)
    assert str(site.workdir) not in caught.value.text  # no real paths for the visitor


def test_links_the_owner_placed_are_followed_as_for_serving(site, tmp_path: Path) -> None:
    # A module-based site: wwwroot/<module> is a link to the module's own folder.
    module = tmp_path / "module"
    module.mkdir()
    (module / "data.txt").write_text("module data")
    os.symlink(module, site.workdir / "wwwroot" / "mod")
    os.symlink(site.workdir / "conf", site.workdir / "data" / "c")
    files = SiteFiles(site)
    with files.open("/mod/data.txt") as f:
        assert f.read() == "module data"
    with files.open("/mod/new.txt", "w") as f:
        f.write("x")
    assert (module / "new.txt").read_text() == "x"
    with pytest.raises(FileOutZone):  # a link into conf/ is still conf/
        files.open("data/c/config.json")


def test_with_follow_symlinks_off_a_link_out_is_refused(make_site, tmp_path: Path) -> None:
    config = {**CONFIG, "website": {**CONFIG["website"], "follow_symlinks": False}}
    workdir = make_site(config=config, files=FILES)
    site = get_site(create_app(workdir, extra_plugins={"page": PagePlugin()}))
    (tmp_path / "outside.txt").write_text("not the site's")
    os.symlink(tmp_path / "outside.txt", workdir / "wwwroot" / "link.txt")
    with pytest.raises(FileOutZone):
        SiteFiles(site).open("/link.txt")
    with pytest.raises(FileOutZone):
        SiteFiles(site).open("/link.txt", "w")
    with pytest.raises(URIopException):
        URIOp(site).read("/link.txt")
    assert (tmp_path / "outside.txt").read_text() == "not the site's"


def test_files_the_site_runs_are_read_but_never_written(site) -> None:
    files = SiteFiles(site)
    with files.open("/page.tmpl") as f:
        assert f.read() == "{{ 1 }}"
    for name in ("/page.tmpl", "/new.dspy", "/tool.py", "data/x.sqlds"):
        with pytest.raises(FileOutZone):
            files.open(name, "w")
    with pytest.raises(FileOutZone):
        files.open("/page.tmpl", "r+")
    assert (site.workdir / "wwwroot" / "page.tmpl").read_text() == "{{ 1 }}"
    assert not (site.workdir / "wwwroot" / "new.dspy").exists()


def test_missing_files_and_folders(site) -> None:
    files = SiteFiles(site)
    with pytest.raises(SiteFileNotFound) as caught:
        files.open("/nope.txt")
    assert caught.value.status == 404 and isinstance(caught.value, FileNotFoundError)
    with pytest.raises(FileOutZone):
        files.open("/sub")
    with pytest.raises(FileOutZone):
        files.open("/")
    with pytest.raises(SiteFileNotFound):
        files.open("/no/such/folder/x.txt", "w")  # folders are not made


@pytest.mark.parametrize("mode", ["r", "rb", "w", "wt", "a+", "x", "rb+", "br"])
def test_valid_modes(mode) -> None:
    assert check_mode(mode) == (mode.strip("bt") != "r")


@pytest.mark.parametrize("mode", ["", "rw", "rr", "U", "rU", "bt", "r+b+", "q", 1])
def test_invalid_modes(site, mode) -> None:
    with pytest.raises(ValueError):
        SiteFiles(site).open("/notes.txt", mode)


def test_folder_info(site) -> None:
    root = site.workdir / "wwwroot"
    rows = folder_info(root, "/sub")
    assert [(r["id"], r["name"], r["path"], r["type"], r["size"]) for r in rows] == [
        ("/sub/deep.txt", "deep.txt", "/sub", "file", 4)
    ]
    assert len(rows[0]["mtime"]) == len("2024-01-02 03:04:05")
    top = {r["name"]: r for r in folder_info(root, "")}
    assert top["sub"]["type"] == "dir" and top["sub"]["id"] == "/sub"
    assert top["notes.txt"]["id"] == "/notes.txt"
    with pytest.raises(FileOutZone):
        folder_info(root, "/../conf")


def test_uriop_works_under_the_web_root(site) -> None:
    op = URIOp(site)
    assert op.read("/notes.txt") == "wwwroot notes"
    listing = op.fileList("/sub")
    assert listing["total"] == 1 and listing["rows"][0]["id"] == "_#_sub_#_deep.txt"
    op.mkdir("/", "made")
    op.save("/made/a.txt", "A")
    op.rename("/made/a.txt", "b.txt")
    assert op.read("/made/b.txt") == "A"
    assert op.fileList("/")["rows"][1]["state"] == "closed"  # folders, for a tree view
    op.delete("/made/b.txt")
    assert not (site.workdir / "wwwroot" / "made" / "b.txt").exists()


@pytest.mark.parametrize(
    "call",
    [
        lambda op: op.read("/../conf/config.json"),
        lambda op: op.abspath("/../../etc/passwd"),
        lambda op: op.save("/page.tmpl", "{{ 2 }}"),
        lambda op: op.save("/evil.dspy", "return 1"),
        lambda op: op.rename("/notes.txt", "notes.dspy"),
        lambda op: op.rename("/notes.txt", "../../x.txt"),
        lambda op: op.mkdir("/", ".git"),
        lambda op: op.delete("/page.tmpl"),
        lambda op: op.read("/.hidden"),
    ],
)
def test_uriop_refusals_change_nothing(site, call) -> None:
    before = sorted(str(p) for p in site.workdir.rglob("*"))
    with pytest.raises(URIopException) as caught:
        call(URIOp(site))
    assert caught.value.status == 403
    assert sorted(str(p) for p in site.workdir.rglob("*")) == before
    assert (site.workdir / "wwwroot" / "page.tmpl").read_text() == "{{ 1 }}"


def test_uriop_root_from_the_config(make_site) -> None:
    config = {**CONFIG, "website": {**CONFIG["website"], "root": "$[workdir]$/docs"}}
    site = get_site(
        create_app(make_site(config=config, files=FILES), extra_plugins={"page": PagePlugin()})
    )
    assert URIOp(site).read("manual.txt") == "manual"
