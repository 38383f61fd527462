"""ahcore.debugpage: which frames are the site's, what is redacted, what is escaped."""

from __future__ import annotations

from pathlib import Path

from ahcore.appkeys import get_site
from ahcore.debugpage import REDACTED, debug_page, request_headers, walk


def test_credentials_are_redacted(make_request):
    request = make_request("GET", "/", {
        "Cookie": "s=1", "Authorization": "Bearer x", "X-Hot-Reload-Token": "t",
        "X-Session-Id": "abc", "X-My-Api-Key": "k", "User-Agent": "ua",
    })
    shown = dict(request_headers(request))
    assert shown["User-Agent"] == "ua" and shown["Host"] == "example.org"
    assert {k for k, v in shown.items() if v == REDACTED} == {
        "Cookie", "Authorization", "X-Hot-Reload-Token", "X-Session-Id", "X-My-Api-Key"
    }


def test_only_files_of_the_site_are_its_frames(make_app, make_request, tmp_path):
    app = make_app(files={"wwwroot/mod.py": "def f():\n    raise RuntimeError('<b>')\n"})
    site = get_site(app)
    path = Path(site.workdir) / "wwwroot" / "mod.py"
    namespace: dict[str, object] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    try:
        namespace["f"]()  # type: ignore[operator]
    except RuntimeError as exc:
        frames = walk(exc, [Path(site.workdir)])
        page = debug_page(exc, make_request("GET", "/<i>", app=app), "id1", site)
    assert [f.site for f in frames] == [False, True]
    assert frames[1].shown_name == "wwwroot/mod.py" and frames[1].lineno == 2
    assert "<b>" not in page and "&lt;b&gt;" in page and "/&lt;i&gt;" in page
