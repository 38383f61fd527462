"""``RegisterFunction`` where ahserver 1.2.0's function routes found it (one per application)."""

from ahcore_compat.functions import RegisterFunction

__all__ = ["RegisterFunction"]
