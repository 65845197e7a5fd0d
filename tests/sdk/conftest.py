"""Django for the SDK tests: the test project's settings, a migrated sqlite database."""

import pytest

from tests.sdk.project import testenv

testenv.setup()


@pytest.fixture
def layer():
    """A fresh in-memory layer installed as the default layer of the process."""
    from channelworks import testing

    with testing.in_memory_layer() as wrapper:
        yield wrapper
