"""ahcore.appkeys: where a Site hangs off its application."""

from __future__ import annotations

import pytest
from aiohttp import web

from ahcore.appkeys import SITE_KEY, get_site
from ahcore.site import Site


def test_get_site_is_the_site_the_app_was_built_with(make_app) -> None:
    app = make_app()
    site = get_site(app)
    assert isinstance(site, Site)
    assert site is app[SITE_KEY]
    assert site.app is app


def test_two_apps_have_two_sites(make_app) -> None:
    assert get_site(make_app()) is not get_site(make_app())


def test_an_app_that_is_not_an_ahcore_site_has_none() -> None:
    with pytest.raises(KeyError):
        get_site(web.Application())
