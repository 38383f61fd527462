"""The data-layer fixtures come from :mod:`ahcore.db.testing`, shared with the plugins."""

from ahcore.db.testing import db_client, engine  # noqa: F401
