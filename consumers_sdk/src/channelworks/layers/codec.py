"""Message encoding: msgpack dicts with a size limit and clear errors."""

from __future__ import annotations

from typing import Any

import msgpack

from channelworks.exceptions import MessageNotEncodable, MessageTooLarge

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024


def encode(message: object, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> bytes:
    """Pack a message dict; raise a named error when it is not a dict, not packable or too big."""
    if not isinstance(message, dict):
        raise MessageNotEncodable(f"a message must be a dict, not {type(message).__name__}")
    try:
        packed: bytes = msgpack.packb(message, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as error:
        raise MessageNotEncodable(
            f"message cannot be encoded with msgpack ({error}); allowed values are None, bool, "
            "int, float, str, bytes, and lists/dicts of those"
        ) from error
    if len(packed) > max_size:
        raise MessageTooLarge(
            f"message is {len(packed)} bytes encoded; the limit (max_message_size) is {max_size}"
        )
    return packed


def decode(payload: bytes) -> dict[str, Any]:
    """Unpack one message packed by :func:`encode`."""
    message: dict[str, Any] = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    return message
