"""What a Channels 4 user writes: ``AsyncWebsocketConsumer`` echo and group broadcast."""

from channels.generic.websocket import AsyncWebsocketConsumer


class EchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)


class BroadcastConsumer(AsyncWebsocketConsumer):
    """A chat room: join ``bench-<group>`` on connect, leave it on disconnect."""

    async def connect(self):
        self.group = f"bench-{self.scope['url_route']['kwargs']['group']}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(
            self.group, {"type": "bench.message", "text": text_data}
        )

    async def bench_message(self, event):
        await self.send(text_data=event["text"])
