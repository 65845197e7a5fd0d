"""The shipped JavaScript client and the interface's per-socket limits agree: a page that queued
200 frames while its socket was not open (``maxQueuedMessages`` allows 1,000) gets every one of
them to the worker, in order, on the socket that opens, at the interface's default
``MESSAGE_BURST`` and ``MESSAGE_RATE``. Before, the client sent its whole backlog at once and the
interface closed the socket 1008 after about 40 frames, losing the rest. The client runs under
``node`` (no browser), the interface is a real process on a real Redis."""

from __future__ import annotations

import asyncio
import json

from channelworks.layers import RedisChannelLayer
from tests.interface.conftest import StartInterface
from tests.interface.support import FakeWorker
from tests.support.node import MODULE, needs_node, run_node

BACKLOG = 200

pytestmark = needs_node


def _page_with_a_backlog(url: str) -> dict[str, object]:
    """A page that sends BACKLOG frames before its socket opened, then waits until the client's
    queue is empty and a second more; what it saw of the socket's close, if it closed."""
    program = f"""
    import {{ WebSocketBridge }} from {json.dumps(MODULE)};
    const bridge = new WebSocketBridge();
    bridge.connect({json.dumps(url)}, undefined, {{ maxRetries: 0 }});
    let closed = null;
    bridge.socket.addEventListener("close", (event) => {{ closed = event.code; }});
    for (let n = 0; n < {BACKLOG}; n++) bridge.send({{ n }});
    const started = Date.now();
    const timer = setInterval(() => {{
      const left = bridge.socket._queue.length;
      const waited = Date.now() - started;
      if ((left === 0 && waited > 1000) || closed !== null || waited > 30000) {{
        clearInterval(timer);
        setTimeout(() => {{
          console.log(JSON.stringify({{ closed, left: bridge.socket._queue.length }}));
          bridge.close();
        }}, 1000);
      }}
    }}, 100);
    """
    result = run_node(program)
    assert isinstance(result, dict)
    return result


async def test_a_queued_backlog_reaches_the_worker_in_order(
    start_interface: StartInterface, worker_layer: RedisChannelLayer
) -> None:
    interface = start_interface()
    async with FakeWorker(worker_layer) as worker:
        page = await asyncio.to_thread(_page_with_a_backlog, interface.ws_url("/backlog/"))
        got = await worker.wait_for("websocket.receive", BACKLOG, timeout=30, path="/backlog/")
    assert page == {"closed": None, "left": 0}
    assert [json.loads(message["text"])["n"] for message in got] == list(range(BACKLOG))
