"""ahcore-tmpl: Jinja2 templates for ahcore, resolved by URL across the site's roots.

The plugin module is :mod:`ahcore_tmpl.plugin` (entry point ``tmpl``).
"""

from __future__ import annotations

from ahcore_tmpl.environment import (
    ENVIRONMENT_KEY,
    SYNC_ENVIRONMENT_KEY,
    UrlEnvironment,
    environment_for,
    sync_environment_for,
)
from ahcore_tmpl.loader import TemplateNameRefused, UrlLoader
from ahcore_tmpl.processor import PROCESSOR_NAME, SUFFIXES, TmplProcessor
from ahcore_tmpl.syncsafe import Analysis, analyze

__all__ = [
    "ENVIRONMENT_KEY",
    "SYNC_ENVIRONMENT_KEY",
    "Analysis",
    "PROCESSOR_NAME",
    "SUFFIXES",
    "TemplateNameRefused",
    "TmplProcessor",
    "UrlEnvironment",
    "UrlLoader",
    "analyze",
    "environment_for",
    "sync_environment_for",
]
