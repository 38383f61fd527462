"""The upload disk fills up: a real, small tmpfs mounted as the site's ``filesroot``.

Uploads stream to ``NAME.part`` and are renamed when whole
(``ahcore/uploads.py``). When the disk runs out mid-file the visitor must get
a clear 507 Insufficient Storage without a traceback or a server path;
nothing of that request may stay on disk (no ``.part``, no half file, not
the request's earlier files either); the space must be free again; and the
next upload must work without a restart — including after an operator frees
a disk that was completely full.

Needs root (or CAP_SYS_ADMIN) to mount the tmpfs; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from advkit import files_under, raw_exchange, request_bytes

pytest.importorskip("ahcore_dspy")

DISK = 512 * 1024  # the tmpfs
BIG = 1024 * 1024  # more than the whole disk
LIMIT = 4 * 1024 * 1024  # body and file caps well above BIG: the disk is what runs out

ECHO = """\
files = params_kw.get("_files") or {}
return {"params": {k: v for k, v in params_kw.items() if k != "_files"}, "files": files}
"""
SAVE = "return {'stored': await save_file(b'z' * int(params_kw.n), 'saved.bin')}\n"
BOUNDARY = "DiskFullBoundary"


def multipart(parts: list[tuple[str, str, bytes]]) -> bytes:
    out = b""
    for name, filename, data in parts:
        head = (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        out += head.encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.fixture
def site(make_site) -> Iterator[Path]:
    """A site whose ``files/`` folder is a fresh 512 KiB tmpfs (unmounted afterwards)."""
    workdir = make_site(
        config={
            "website": {
                "paths": [["$[workdir]$/wwwroot", ""]],
                "processors": [[".dspy", "dspy"]],
                "client_max_size": LIMIT,
                "cookie_secret": "faults-disk-secret-of-32-bytes!!",
            },
            "filesroot": "$[workdir]$/files",
            "uploads": {"max_file_size": LIMIT},
            "plugins": {"dspy": True},
        },
        files={"wwwroot/echo.dspy": ECHO, "wwwroot/save.dspy": SAVE},
    )
    files = workdir / "files"
    files.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small disk to fill")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", str(files)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not os.path.ismount(files):
        pytest.skip(
            "cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): "
            + (done.stderr.strip() or f"exit {done.returncode}")
        )
    try:
        yield workdir
    finally:
        if subprocess.run(["umount", str(files)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(files)], capture_output=True)
        assert not os.path.ismount(files)


@pytest.fixture
async def server(site, serve):
    return await serve(site)


async def upload(server, parts: list[tuple[str, str, bytes]]):
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return await raw_exchange(
        server, request_bytes("POST", "/echo.dspy", multipart(parts), headers), timeout=15
    )


def assert_disk_full_answer(reply, site: Path) -> None:
    assert reply.status == 507, reply.raw[:400]
    assert b"storage" in reply.body.lower(), reply.body
    reply.assert_clean()
    for detail in (str(site).encode(), b"No space", b"Errno", b".part"):
        assert detail not in reply.raw, (detail, reply.raw[:400])


async def assert_small_upload_works(server, site: Path) -> None:
    """A later upload is stored whole, under its generated name (no restart in between)."""
    data = os.urandom(20_000)
    reply = await upload(server, [("f", "after.bin", data)])
    assert reply.status == 200, reply.raw[:400]
    subpath = json.loads(reply.body)["params"]["f"]
    assert (site / "files" / subpath).read_bytes() == data
    assert [p.relative_to(site / "files").as_posix() for p in files_under(site / "files")] == [
        subpath
    ]


async def test_upload_bigger_than_the_free_space_is_507_and_leaves_nothing(server, site):
    files = site / "files"
    free = free_bytes(files)
    assert free <= DISK < BIG

    reply = await upload(server, [("f", "big.bin", os.urandom(BIG))])

    assert_disk_full_answer(reply, site)
    assert files_under(files) == [], "a partial or .part file was left"
    assert free_bytes(files) == free, "the space of the failed upload was not given back"
    await assert_small_upload_works(server, site)


async def test_earlier_files_of_the_failing_request_are_removed_too(server, site):
    """Two files: the first is stored whole, the second fills the disk → neither stays."""
    files = site / "files"
    free = free_bytes(files)

    reply = await upload(
        server,
        [("first", "first.bin", os.urandom(100_000)), ("second", "big.bin", os.urandom(BIG))],
    )

    assert_disk_full_answer(reply, site)
    assert files_under(files) == []
    assert free_bytes(files) == free
    await assert_small_upload_works(server, site)


async def test_a_completely_full_disk_recovers_once_space_is_freed(server, site):
    """Something else filled the disk: uploads are refused; the operator frees it; they work."""
    files = site / "files"
    filler = files / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    assert free_bytes(files) < 8192

    for _ in range(3):
        reply = await upload(server, [("f", "small.bin", os.urandom(20_000))])
        assert_disk_full_answer(reply, site)
    assert files_under(files) == [filler]

    filler.unlink()
    await assert_small_upload_works(server, site)


async def test_save_file_from_a_script_on_a_full_disk_is_507_and_leaves_nothing(server, site):
    files = site / "files"
    free = free_bytes(files)

    reply = await raw_exchange(server, request_bytes("GET", f"/save.dspy?n={BIG}"))

    assert_disk_full_answer(reply, site)
    assert files_under(files) == []
    assert free_bytes(files) == free
    reply = await raw_exchange(server, request_bytes("GET", "/save.dspy?n=1000"))
    assert reply.status == 200, reply.raw[:400]
    assert (files / json.loads(reply.body)["stored"]).read_bytes() == b"z" * 1000
