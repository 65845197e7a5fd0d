"""The JavaScript client outside a browser: its ES module exports, its URL and backoff rules, and
reconnection with queued frames against a real WebSocket server (``node``, no browser)."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.server import ServerConnection, serve

from tests.support.node import CLASSIC, MODULE, needs_node, run_node

pytestmark = needs_node


def test_the_es_module_exports_the_bridge() -> None:
    program = f"""
    import bridge, {{ WebSocketBridge, ReconnectingSocket }} from {json.dumps(MODULE)};
    const b = new WebSocketBridge();
    console.log(JSON.stringify({{
      same: bridge === WebSocketBridge,
      global: globalThis.channels.WebSocketBridge === WebSocketBridge,
      socketClass: typeof ReconnectingSocket,
      methods: ["connect", "listen", "demultiplex", "stream", "send"]
        .filter(m => typeof b[m] === "function"),
    }}));
    """
    assert run_node(program) == {
        "same": True,
        "global": True,
        "socketClass": "function",
        "methods": ["connect", "listen", "demultiplex", "stream", "send"],
    }


def test_urls_follow_the_page_and_delays_grow_capped_with_jitter() -> None:
    program = f"""
    import {{ createRequire }} from "node:module";
    const load = createRequire(import.meta.url);
    const {{ socketUrl, reconnectionDelay }} = load({json.dumps(CLASSIC)});
    const https = {{ href: "https://example.test:8443/room/7/" }};
    const http = {{ href: "http://example.test/" }};
    const options = {{ minReconnectionDelay: 1000, maxReconnectionDelay: 8000,
                       reconnectionDelayGrowFactor: 2, jitter: 0.5 }};
    console.log(JSON.stringify({{
      root: socketUrl(undefined, https),
      path: socketUrl("/ws/", https),
      relative: socketUrl("stream/", https),
      plain: socketUrl("/ws/", http),
      absolute: socketUrl("ws://other.test:9000/x", https),
      slowest: [0, 1, 2, 3, 4, 10].map(n => reconnectionDelay(options, n, 0)),
      fastest: [0, 1, 2, 3, 4, 10].map(n => reconnectionDelay(options, n, 1)),
    }}));
    """
    assert run_node(program) == {
        "root": "wss://example.test:8443/",
        "path": "wss://example.test:8443/ws/",
        "relative": "wss://example.test:8443/room/7/stream/",
        "plain": "ws://example.test/ws/",
        "absolute": "ws://other.test:9000/x",
        "slowest": [1000, 2000, 4000, 8000, 8000, 8000],
        "fastest": [500, 1000, 2000, 4000, 4000, 4000],
    }


async def test_the_bridge_reconnects_and_sends_what_was_queued_meanwhile() -> None:
    """The server greets on a stream, then drops the first connection; the bridge comes back and
    the frame the page sent while it was away arrives on the new connection."""
    received: list[tuple[int, object]] = []
    connections = 0

    async def handler(socket: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        number = connections
        await socket.send(json.dumps({"stream": "hello", "payload": {"connection": number}}))
        await socket.send(json.dumps({"plain": number}))
        async for frame in socket:
            received.append((number, json.loads(frame)))
            if number == 1:
                await socket.close(1012, "restarting")

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        program = f"""
        import {{ WebSocketBridge }} from {json.dumps(MODULE)};
        const seen = [];
        const bridge = new WebSocketBridge();
        bridge.connect("ws://127.0.0.1:{port}/ws/", undefined,
                       {{ minReconnectionDelay: 100, maxReconnectionDelay: 400, jitter: 0 }});
        bridge.listen((message, stream) => seen.push(["listen", message, stream]));
        let away = 0;
        bridge.socket.addEventListener("close", () => {{
          away += 1;
          if (away === 1) bridge.send({{ queued: true }});  // while no socket is open
        }});
        bridge.demultiplex("hello", (payload, stream) => {{
          seen.push([stream, payload]);
          if (payload.connection === 1) {{
            bridge.stream("chat").send({{ first: true }});  // the server closes after this
          }}
          if (payload.connection === 2) {{
            setTimeout(() => {{ console.log(JSON.stringify(seen)); bridge.close(); }}, 200);
          }}
        }});
        """
        seen = await asyncio.to_thread(run_node, program)
    assert seen == [
        ["hello", {"connection": 1}],
        ["listen", {"plain": 1}, None],
        ["hello", {"connection": 2}],
        ["listen", {"plain": 2}, None],
    ]
    assert received == [(1, {"stream": "chat", "payload": {"first": True}}), (2, {"queued": True})]
