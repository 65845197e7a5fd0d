"""The layer's own connections encode commands as redis-py would and route them by their key."""

from __future__ import annotations

import pytest
from redis import exceptions as redis_errors
from redis.asyncio.connection import Connection

from channelworks.layers.redis.cluster import first_key, read_cluster_slots
from channelworks.layers.redis.wire import pack_commands

CALLS = [
    ("EVALSHA", "a" * 40, 1, "{p:abc}:inbox", 300000, 10000, b"\x00\r\n\xff payload"),
    ("ZADD", "{p:g:room}", 1764640000.123456, "specific.abc!def"),
    ("ZREMRANGEBYSCORE", "{p:g:room}", "-inf", "(1764639914.5"),
    ("SET", "ключ", -42),
    ("XDEL", b"{p#3}:q:chat", b"1-0", b"2-5"),
]


def test_commands_are_encoded_byte_for_byte_as_redis_py_does() -> None:
    assert b"".join(pack_commands(CALLS)) == b"".join(Connection().pack_commands(CALLS))


@pytest.mark.parametrize("value", [True, None, [1]])
def test_a_value_redis_cannot_take_is_refused_by_name(value: object) -> None:
    with pytest.raises(redis_errors.DataError, match=type(value).__name__):
        pack_commands([("SET", "key", value)])


@pytest.mark.parametrize(
    ("call", "key"),
    [
        (("EVALSHA", "sha", 2, "{t}:a", "{t}:b", "arg"), b"{t}:a"),
        (("EVAL", "return 1", 1, b"{t}:a"), b"{t}:a"),
        (("BLMPOP", 5, 1, "{p:x}:inbox", "LEFT", "COUNT", 1000), b"{p:x}:inbox"),
        (
            ("XREADGROUP", "GROUP", "plain", "c", "COUNT", 1, "STREAMS", "{s}:q:a", ">"),
            b"{s}:q:a",
        ),
        (("XREAD", "COUNT", 1, "BLOCK", 5, "STREAMS", b"{s}:q:a", b"0-0"), b"{s}:q:a"),
        (("XDEL", "{s}:q:a", "1-0"), b"{s}:q:a"),
    ],
)
def test_a_call_is_routed_by_the_key_it_touches(call: tuple[object, ...], key: bytes) -> None:
    assert first_key(call) == key


def test_the_slot_map_names_masters_and_every_node_to_ask() -> None:
    reply = [
        [0, 5460, [b"10.0.0.1", 7000, b"id1"], [b"10.0.0.4", 7003, b"id4"]],
        [5461, 16383, [b"", 7001, b"id2"]],
    ]
    owners, nodes = read_cluster_slots(reply, asked=("10.0.0.2", 7001))
    assert owners[0] == owners[5460] == ("10.0.0.1", 7000)
    assert owners[5461] == owners[16383] == ("10.0.0.2", 7001)
    assert nodes == [("10.0.0.1", 7000), ("10.0.0.4", 7003), ("10.0.0.2", 7001)]
