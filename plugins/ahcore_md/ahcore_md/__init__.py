"""ahcore-md: markdown pages for ahcore, rendered once per change and served per host.

The plugin module is :mod:`ahcore_md.plugin` (entry point ``md``).
"""

from __future__ import annotations

from ahcore_md.processor import PROCESSOR_NAME, MarkdownProcessor
from ahcore_md.render import RenderedMarkdown, render_markdown
from ahcore_md.sanitize import sanitize_html
from ahcore_md.urls import is_safe_url

__all__ = [
    "PROCESSOR_NAME",
    "MarkdownProcessor",
    "RenderedMarkdown",
    "is_safe_url",
    "render_markdown",
    "sanitize_html",
]
