"""What the worker decides about a message from its delivery count (pure; the behaviour with real
processes is in test_a_post_whose_worker_dies_is_not_run_twice and test_a_poison_message_*)."""

import pytest

from channelworks_worker import safeguards
from channelworks_worker.safeguards import Verdict

LIMITS = safeguards.Safeguards(max_deliveries=3)


@pytest.mark.parametrize(
    ("channel", "method", "delivery", "verdict"),
    [
        ("http.request", "POST", 1, Verdict.RUN),
        ("http.request", "POST", 2, Verdict.NOT_RETRIED),
        ("http.request", "delete", 2, Verdict.NOT_RETRIED),
        ("http.request", "GET", 2, Verdict.RUN),
        ("http.request", "head", 3, Verdict.RUN),
        ("http.request", "GET", 4, Verdict.DEAD_LETTER),
        ("websocket.receive", None, 3, Verdict.RUN),
        ("websocket.receive", None, 4, Verdict.DEAD_LETTER),
    ],
)
def test_a_redelivered_message_runs_only_when_that_is_safe(channel, method, delivery, verdict):
    message = {"reply_channel": "x!1"} if method is None else {"method": method}
    assert LIMITS.verdict(channel, message, delivery) is verdict


def test_the_connection_of_a_given_up_message_is_told():
    http = safeguards.answer_for_given_up("http.request", {"reply_channel": "h!1"})
    assert http is not None and http[0] == "h!1" and http[1]["status"] == 502
    socket = safeguards.answer_for_given_up("websocket.receive", {"reply_channel": "w!1"})
    assert socket == ("w!1", {"close": True})
    assert safeguards.answer_for_given_up("websocket.disconnect", {"reply_channel": "w!1"}) is None
    assert safeguards.answer_for_given_up("thumbnails", {"id": 3}) is None
