"""Django's stale database connections are closed before and after each sync consumer, as Django
does per request, but only once the process has opened a connection: until then there is nothing
to close, and a consumer that uses no database pays nothing for it.

Run in a fresh process: whether a connection was ever opened is a property of the process."""

import json
import subprocess
import sys

PROGRAM = """
import json, sys
import django
from django.conf import settings

settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]}},
    INSTALLED_APPS=[],
)
django.setup()
from django.db import connection

from channelworks import dispatch, route, routing, testing

calls = []
close_for_real = dispatch.close_old_connections


def counted_close():
    calls.append(1)
    close_for_real()


dispatch.close_old_connections = counted_close


def no_database(message):
    pass


def queries(message):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


report = {}
with testing.in_memory_layer() as layer:
    router = routing.Router(
        [route("plain.work", no_database), route("query.work", queries)], defaults=False
    )
    runner = dispatch.Runner(router, layer)
    for _ in range(3):
        runner.dispatch_sync("plain.work", {})
    report["closes_before_any_connection"] = len(calls)
    outcome = runner.dispatch_sync("query.work", {})
    report["query_status"] = outcome.status
    report["closes_for_the_first_query"] = len(calls)
    report["connected_after_the_query"] = connection.connection is not None
    runner.dispatch_sync("plain.work", {})
    report["closes_after_a_connection_was_opened"] = len(calls)
print(json.dumps(report))
"""


def test_closing_stale_connections_starts_with_the_first_connection(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path / "db.sqlite3")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # No connection yet: nothing could be stale, no call per message.
    assert report["closes_before_any_connection"] == 0, report
    assert report["query_status"] == "ok", report
    # The consumer that connected: its connection (CONN_MAX_AGE 0) is closed after it, as Django
    # closes it after a request.
    assert report["closes_for_the_first_query"] == 1, report
    assert report["connected_after_the_query"] is False, report
    # From then on, every message: before and after its consumer.
    assert report["closes_after_a_connection_was_opened"] == 3, report
