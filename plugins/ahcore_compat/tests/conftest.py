"""The data-layer fixtures come from :mod:`ahcore.testing.databases`."""

from ahcore.testing.databases import db_client, engine  # noqa: F401
