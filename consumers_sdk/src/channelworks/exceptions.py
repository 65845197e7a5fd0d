"""Every exception the ``channelworks`` package raises, in one place.

``ChannelFull`` is Channels' own class, so code written for Channels catches ours unchanged.
"""

from __future__ import annotations

from channels.exceptions import ChannelFull

__all__ = [
    "ChannelFull",
    "ChannelworksError",
    "ConfigurationError",
    "InvalidChannelName",
    "InvalidGroupName",
    "LayerConnectionError",
    "MessageNotEncodable",
    "MessageTooLarge",
    "ShardChangePending",
]


class ChannelworksError(Exception):
    """Base class of the errors this package defines itself."""


class InvalidChannelName(ChannelworksError, TypeError):
    """A channel name breaks Channels' naming rules (a ``TypeError``, as in Channels)."""


class InvalidGroupName(ChannelworksError, TypeError):
    """A group name breaks Channels' naming rules (a ``TypeError``, as in Channels)."""


class MessageTooLarge(ChannelworksError, ValueError):
    """An encoded message is bigger than the layer's ``max_message_size``."""


class MessageNotEncodable(ChannelworksError, TypeError):
    """A message is not a dict of values msgpack can encode."""


class ConfigurationError(ChannelworksError, ValueError):
    """A layer or runtime setting is missing or has a value that is not allowed."""


class LayerConnectionError(ChannelworksError, ConnectionError):
    """Redis could not be reached after the bounded retries; names the address tried.

    Retrying the operation later is safe: nothing was half-written by the failed call.
    """


class ShardChangePending(ChannelworksError, RuntimeError):
    """The work shard count cannot change yet: the previous change is still draining."""


# --- SDK: consumers, routing, sessions (appended by the SDK owner) --------------------------------
# The names Channels 1 projects import from ``channels.exceptions``, plus the SDK's own errors.

__all__ += [
    "ChannelSocketException",
    "ConsumeLater",
    "DenyConnection",
    "InvalidRoute",
    "RequestAborted",
    "RequestTimeout",
    "ResponseLater",
    "SendNotAvailableOnDemultiplexer",
    "SyncCallInEventLoop",
]


class ConsumeLater(ChannelworksError):
    """Raised by a consumer to have its message put back on its channel and handled later."""


class ResponseLater(ChannelworksError):
    """Raised by a view that will answer the HTTP request later (from another consumer)."""


class RequestTimeout(ChannelworksError):
    """The body of an HTTP request did not arrive in time; the client gets a 408."""


class RequestAborted(ChannelworksError):
    """The client went away before its HTTP request body arrived; nothing is answered."""


class DenyConnection(ChannelworksError):
    """Raised in a ``websocket.connect`` consumer to reject the connection (the client sees 403)."""


class ChannelSocketException(ChannelworksError):
    """Base for exceptions that know how to answer the socket themselves: override :meth:`run`."""

    def run(self, message: object) -> None:
        raise NotImplementedError("ChannelSocketException subclasses must implement run(message)")


class SendNotAvailableOnDemultiplexer(ChannelworksError):
    """A demultiplexer cannot send un-multiplexed frames; use the ``multiplexer`` kwarg."""


class InvalidRoute(ChannelworksError, ValueError):
    """A ``route``/``route_class``/``include`` was given something it cannot route with."""


class SyncCallInEventLoop(ChannelworksError, RuntimeError):
    """A synchronous layer call (``Group.add``, ``Channel.send(immediately=True)``...) was made
    from a thread that runs an event loop; it would block the loop. Await the ``a``-prefixed
    variant instead (``await Group(name).aadd(channel)``)."""


# --- The ``channelworks`` command: init, build, manifest, status (appended by the CLI owner) ------

__all__ += ["BuildError", "ClusterError", "ProjectError"]


class ProjectError(ChannelworksError, ValueError):
    """A Django project cannot be packaged as it is: its settings or routing do not import, a file
    it needs is missing, or a template would overwrite something. The message says what to fix."""


class BuildError(ChannelworksError, RuntimeError):
    """No container engine could build (or push) the worker image, or the engine failed."""


class ClusterError(ChannelworksError, RuntimeError):
    """The cluster could not answer a question about a RealtimeApp: unreachable, no kubeconfig,
    the CRD not installed, the app missing, or the access refused."""


# --- Running consumers (appended by the worker-hardening owner) -----------------------------------

__all__ += ["ConsumerCancelled"]


class ConsumerCancelled(ChannelworksError, RuntimeError):
    """An ``async def`` consumer let a ``CancelledError`` escape that nobody asked for (no time
    limit, no drain cancelled it). Its connection would wait forever, so its socket is closed."""
