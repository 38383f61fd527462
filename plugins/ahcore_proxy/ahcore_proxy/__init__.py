"""ahcore-proxy: a file that renders to a JSON description of an upstream request.

The plugin module registered in the ``ahcore`` entry-point group is
:mod:`ahcore_proxy.plugin`; the processor is :class:`ProxyProcessor`; the
description format is :mod:`ahcore_proxy.description`, the allow-list
:mod:`ahcore_proxy.settings`, the header rules :mod:`ahcore_proxy.headers`.
"""

from __future__ import annotations

from ahcore_proxy.description import METHODS, DescriptionError, Upstream, parse_description
from ahcore_proxy.headers import HOP_BY_HOP, filter_headers
from ahcore_proxy.processor import ProxyProcessor
from ahcore_proxy.settings import DEFAULT_TIME_LIMIT, ProxySettings, parse_settings

__all__ = [
    "DEFAULT_TIME_LIMIT",
    "HOP_BY_HOP",
    "METHODS",
    "DescriptionError",
    "ProxyProcessor",
    "ProxySettings",
    "Upstream",
    "filter_headers",
    "parse_description",
    "parse_settings",
]
