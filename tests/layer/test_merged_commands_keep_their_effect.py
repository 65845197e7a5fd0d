"""Commands the batcher merges (a worker's acks and hand-out records) do what they did apart.

Records of new items stand where the first of them was queued, deletes where the last was: a
record and the delete of the same item, queued into one pipeline, still leave nothing behind.
"""

import asyncio
import secrets

from channelworks.layers import RedisChannelLayer
from tests.layer import redis_probe


def hash_writes(client) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("hset", "hdel"))


async def test_records_and_deletes_merged_in_one_pipeline_leave_what_they_did_apart(redis_url):
    layer = RedisChannelLayer(hosts=[redis_url], prefix=f"merge{secrets.token_hex(3)}")
    server = redis_probe.client_for(redis_url)
    key = f"{{mergetest{secrets.token_hex(3)}}}:attempts"
    tag = key[1 : key.index("}")]
    try:
        batcher = layer._batcher_now()
        # Something in flight, so what follows queues up for one pipeline.
        busy = asyncio.ensure_future(batcher.command(tag, "PING"))
        await asyncio.sleep(0)
        replies = asyncio.gather(
            batcher.enqueue_merged(tag, "HSET", key, "a", 1, early=True),
            batcher.enqueue_merged(tag, "HDEL", key, "a"),
            batcher.enqueue_merged(tag, "HSET", key, "b", 1, early=True),
        )
        before = hash_writes(server)
        await busy
        settled = await asyncio.wait_for(replies, 5)
        spent = hash_writes(server) - before
        left = server.hgetall(key)
    finally:
        server.delete(key)
        await layer.close()
    assert left == {b"b": b"1"}
    assert spent == 2  # one HSET and one HDEL
    assert settled == [2, 1, 2]  # each caller gets its merged command's reply
