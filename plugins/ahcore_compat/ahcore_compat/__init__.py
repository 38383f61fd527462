"""ahcore-compat: ahserver compatibility for ahcore.

The ``ahserver`` import package (``webapp``, ``configuredServer``,
``serverenv``) for app modules written for ahserver, bound to the
application being started, and the script names of ahserver 0.x
(``absurl``, ``runSQL`` …, ``CRUD``) through the ``compat`` plugin.
"""

from ahcore_compat.appstate import NoApplication
from ahcore_compat.functions import RegisterFunction
from ahcore_compat.serverenv import ServerEnv

__all__ = ["NoApplication", "RegisterFunction", "ServerEnv"]
