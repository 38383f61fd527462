"""``ahserver`` for app modules written for ahserver, served by ahcore.

Provided by the ahcore-compat distribution (not the ahserver project): the
modules app code imports — ``ahserver.webapp``, ``ahserver.configuredServer``,
``ahserver.serverenv`` — with everything bound to the application being
started instead of process-wide singletons. See ahcore-compat's README.
"""
