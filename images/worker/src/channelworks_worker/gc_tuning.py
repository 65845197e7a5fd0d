"""Garbage-collector settings for the long-running worker process.

CPython's cyclic collector makes a young-generation pass every 700 allocations of container
objects, and now and then a full pass over every object alive, Django's and the routing's
included. A worker allocates a few hundred objects per message, nearly all freed by reference
counting, so those passes mostly rescan the start-up heap and whatever is in flight. The same
settings as the interface's (channelworks_interface/gc_tuning.py), once the process is set up:

- ``gc.freeze()``: what is alive after start-up (modules, Django, the routing, the layer) moves
  to the permanent generation and is never scanned again;
- a young pass every 20,000 allocations instead of 700: per-message objects are long freed by
  then, so fewer in-flight objects are promoted, and the older generations fill (and are
  collected) far less often. Garbage in reference cycles is still collected, in bigger batches.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 20_000


def tune_for_serving() -> None:
    """Collect and freeze the start-up heap, then collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
