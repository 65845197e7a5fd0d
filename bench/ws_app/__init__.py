"""The two applications bench/ws.py runs side by side (see bench/README.md, "WebSocket data plane").

- ``cw_project``: a Channels-1-style project on the Channelworks SDK, served split:
  ``channelworks-interface`` (Daphne) -> Redis layer -> ``channelworks-worker`` processes.
- ``c4_project``: an ordinary Channels 4 project, served in-process by Daphne with
  channels_redis (``RedisChannelLayer``, or ``RedisPubSubChannelLayer``).

Both answer the same two paths:

- ``/echo/``: every text frame comes back unchanged to the socket that sent it;
- ``/broadcast/<group>/``: the socket joins the group ``bench-<group>`` on connect (a chat room);
  every text frame a member sends goes to every member of its group (the sender included).

bench/ws.py puts ``bench/`` on ``PYTHONPATH``, so these import as ``ws_app.cw_project...``.
"""
