"""Set Django up once per test process, for tests/sdk and tests/worker alike."""

import os
import tempfile

_done = False


def setup() -> None:
    global _done
    if _done:
        return
    os.environ.setdefault(
        "CHANNELWORKS_TEST_DB",
        os.path.join(tempfile.mkdtemp(prefix="channelworks-sdk-"), "db.sqlite3"),
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.sdk.project.settings")
    import django
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    django.setup()
    setup_test_environment()
    call_command("migrate", run_syncdb=True, verbosity=0)
    _done = True
