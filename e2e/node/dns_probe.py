"""Ask one DNS server for the A record of a name, once; print the addresses, exit 1 if none.

    python3 e2e/node/dns_probe.py 10.96.0.10 kubernetes.default.svc.cluster.local

Used by e2e/node.sh to wait for cluster DNS through the kube-dns Service (the node has no DNS
client tools). Standard library only, so any python3 can run it.
"""

from __future__ import annotations

import secrets
import socket
import struct
import sys

_TYPE_A = 1
_CLASS_IN = 1
_TIMEOUT = 1.0


def query(name: str) -> tuple[int, bytes]:
    """A recursion-desired query for ``name``'s A record, and its id."""
    ident = secrets.randbits(16)
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.rstrip(".").split("."))
    return ident, header + labels + b"\0" + struct.pack("!HH", _TYPE_A, _CLASS_IN)


def _skip_name(message: bytes, offset: int) -> int:
    while True:
        length = message[offset]
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def addresses(message: bytes, ident: int) -> list[str]:
    """The A records in an answer to the query ``ident``; raises ValueError on anything else."""
    got, flags, questions, answers, _, _ = struct.unpack("!HHHHHH", message[:12])
    if got != ident:
        raise ValueError("answer to another query")
    if flags & 0x000F:
        raise ValueError(f"rcode {flags & 0x000F}")
    offset = 12
    for _ in range(questions):
        offset = _skip_name(message, offset) + 4
    found = []
    for _ in range(answers):
        offset = _skip_name(message, offset)
        kind, _, _, length = struct.unpack("!HHIH", message[offset : offset + 10])
        offset += 10
        if kind == _TYPE_A and length == 4:
            found.append(socket.inet_ntoa(message[offset : offset + 4]))
        offset += length
    return found


def main() -> int:
    server, name = sys.argv[1], sys.argv[2]
    ident, packet = query(name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(_TIMEOUT)
        try:
            sock.sendto(packet, (server, 53))
            found = addresses(sock.recv(4096), ident)
        except (OSError, ValueError) as error:
            print(f"{server}: {name}: {error}", file=sys.stderr)
            return 1
    if not found:
        print(f"{server}: {name}: no A record", file=sys.stderr)
        return 1
    print(" ".join(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
