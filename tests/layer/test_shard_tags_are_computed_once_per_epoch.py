"""The shard tags of an app's layout (slots spread evenly over the cluster) cost about
4 x shards**2 slot computations to find, 2 s of CPU at 1024 shards. Every read of the shard
state makes a new layout (the operator's ``queue_stats`` each poll, a worker's balancing round
while a change drains), so the tags are found once per process for each app, count and epoch,
and every layout of them shares the result."""

from __future__ import annotations

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from channelworks.layers.redis import sharding
from channelworks.layers.redis.keys import KeyLayout


def test_layouts_of_one_app_count_and_epoch_share_their_tags() -> None:
    first = sharding.Epoch(3, 256).layout("demo.chat")
    again = sharding.Epoch(3, 256).layout("demo.chat")
    assert first is not again  # a new layout each state read, as the layer makes them
    assert first.shard_tags is again.shard_tags  # found once
    assert KeyLayout("demo.chat", 256, 4).shard_tags != first.shard_tags  # each epoch its own
    assert KeyLayout("demo.other", 256, 3).shard_tags != first.shard_tags


def test_the_shared_tags_still_spread_the_shards_evenly_over_the_slots() -> None:
    layout = KeyLayout("demo.chat", 64, 2)
    width = REDIS_CLUSTER_HASH_SLOTS / 64
    for index, tag in enumerate(layout.shard_tags):
        assert abs(key_slot(tag.encode()) - (index + 0.5) * width) <= width / 8
    assert len(set(layout.shard_tags)) == 64
