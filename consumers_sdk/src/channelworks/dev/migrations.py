"""The unapplied-migrations warning of ``channelworks dev``, as ``manage.py runserver`` gives it."""

from __future__ import annotations

import logging

logger = logging.getLogger("channelworks.dev")


def unapplied_apps() -> list[str]:
    """The apps with migrations not applied to the default database (after ``django.setup()``);
    empty when there are none or the database cannot be read."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
    from django.db.migrations.executor import MigrationExecutor

    connection = connections[DEFAULT_DB_ALIAS]
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except (ImproperlyConfigured, DatabaseError):
        return []  # no database configured, or none reachable: the project will say so itself
    finally:
        connection.close()  # opened on this thread only for the check
    return sorted({migration.app_label for migration, _ in plan})


def warn_if_unapplied() -> None:
    apps = unapplied_apps()
    if apps:
        logger.warning(
            "You have unapplied migrations for app(s): %s. Your project may not work properly "
            "until you apply them: python manage.py migrate",
            ", ".join(apps),
        )
