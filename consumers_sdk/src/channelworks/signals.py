"""Signals sent around every consumer run (Channels 1's ``channels.signals``).

``consumer_started`` and ``consumer_finished`` are sent in the thread (or task) that runs the
consumer, before and after it, whether it raised or not.
"""

from __future__ import annotations

from django.dispatch import Signal

consumer_started = Signal()
consumer_finished = Signal()
