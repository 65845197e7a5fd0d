"""A blocking read whose connection went silent, while its address answers new connections,
is issued again within seconds, with the layer's default settings.

Behind a Service address, a Redis pod is replaced: the connections made to the old pod go
unanswered, new ones reach the new pod. A blocking read (the process inbox's ``BLMPOP``, a
stream read) waits by design, so when the layer's watch pings that address on a connection made
after the replacement, the new server answers, and nothing tells the dead read from one with
nothing to return. Only TCP can tell, with keepalive probes that go unanswered. Here the server
runs in a network namespace of the test's own; the receiving process's one connection (its inbox
read) is silenced (iptables DROP by client port), the server is replaced by a new, empty one on
the same address, and a message is sent to the receiver from another process.
"""

from __future__ import annotations

import asyncio
import time

from channelworks.layers import RedisChannelLayer
from tests.support import netns, redis_servers
from tests.support.eventually import eventually

# The watch drops a connection silent for keepalive_seconds + 0.25 s (1.25 s; TCP itself after
# 2 s), plus its quarter-second tick and scheduling on a busy machine.
DROPPED_WITHIN = 2.5


async def test_a_blocking_read_on_a_silent_connection_is_issued_again_within_seconds(
    namespace: netns.Namespace, namespaced_server: redis_servers.RedisServer
) -> None:
    receiver = RedisChannelLayer(hosts=[namespaced_server.url], prefix="silent")
    sender = RedisChannelLayer(hosts=[namespaced_server.url], prefix="silent")
    try:
        channel = await receiver.new_channel()
        receiving = asyncio.create_task(receiver.receive(channel))

        def the_inbox_read_is_waiting() -> None:
            clients = namespaced_server.cli("CLIENT", "LIST")
            assert "cmd=blmpop" in clients, clients

        await asyncio.to_thread(eventually, the_inbox_read_is_waiting, timeout=5)
        silenced = await asyncio.to_thread(namespace.silence_connections, namespaced_server.port)
        silenced_at = time.monotonic()
        assert len(silenced) == 1, f"the receiver should have one connection, had {silenced}"
        await asyncio.to_thread(namespaced_server.replace)

        await sender.send(channel, {"text": "after the silence"})
        message = await asyncio.wait_for(receiving, 30)
        waited = time.monotonic() - silenced_at
        print(f"\nthe blocking read was issued again after {waited:.2f}s")
        assert message == {"text": "after the silence"}
        assert waited <= DROPPED_WITHIN, f"the silent connection was kept {waited:.1f}s"
    finally:
        await sender.close()
        await receiver.close()
