"""Well-formed Kaspa addresses for the emulators' deposit addresses (no SDK needed).

kasmm validates settlement addresses with the Kaspa SDK, so an emulator's deposit address must be
a real address, not a look-alike. Kaspa spells addresses as CashAddr does (rusty-kaspa
``crypto/addresses``): ``prefix:`` + base32 (alphabet ``qpzry9x8gf2tvdw0s3jn54khce6mua7l``) of
the version byte and the payload, then an 8-character checksum, the 40-bit BCH polymod over the
prefix's low 5 bits, a zero, the data and eight zeros. Version 0 is a Schnorr public key (32
bytes), 1 an ECDSA one (33), 8 a script hash (32).
"""

from __future__ import annotations

__all__ = ["decode", "encode", "is_valid"]

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATORS = (0x98F2BC8E61, 0x79B76D99E2, 0xF33E5FB3C4, 0xAE2EABE2A8, 0x1E4F43E470)
_PAYLOAD_SIZES = {0: 32, 1: 33, 8: 32}


def _polymod(values: list[int]) -> int:
    c = 1
    for d in values:
        c0 = c >> 35
        c = ((c & 0x07FFFFFFFF) << 5) ^ d
        for i, gen in enumerate(_GENERATORS):
            if (c0 >> i) & 1:
                c ^= gen
    return c ^ 1


def _to_5bit(data: bytes) -> list[int]:
    out, acc, bits = [], 0, 0
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    return out


def _prefix_values(prefix: str) -> list[int]:
    return [ord(ch) & 31 for ch in prefix] + [0]


def encode(payload: bytes, version: int = 0, prefix: str = "kaspa") -> str:
    """The address of ``payload`` (a public key or script hash) on the ``prefix`` network."""
    if _PAYLOAD_SIZES.get(version) != len(payload):
        raise ValueError(f"version {version} takes {_PAYLOAD_SIZES.get(version)} bytes")
    data = _to_5bit(bytes([version]) + payload)
    checksum = _polymod(_prefix_values(prefix) + data + [0] * 8)
    tail = [(checksum >> 5 * (7 - i)) & 31 for i in range(8)]
    return prefix + ":" + "".join(CHARSET[d] for d in data + tail)


def decode(address: str) -> tuple[str, int, bytes]:
    """``(prefix, version, payload)`` of a valid address; ``ValueError`` otherwise."""
    prefix, sep, body = address.partition(":")
    if not sep or not prefix or len(body) < 9 or any(ch not in CHARSET for ch in body):
        raise ValueError("not a Kaspa address")
    values = [CHARSET.index(ch) for ch in body]
    if _polymod(_prefix_values(prefix) + values) != 0:
        raise ValueError("bad checksum")
    acc, bits, raw = 0, 0, bytearray()
    for v in values[:-8]:
        acc = (acc << 5) | v
        bits += 5
        if bits >= 8:
            bits -= 8
            raw.append((acc >> bits) & 0xFF)
    version, payload = raw[0], bytes(raw[1:])
    if _PAYLOAD_SIZES.get(version) != len(payload):
        raise ValueError("bad payload length")
    return prefix, version, payload


def is_valid(address: str, prefix: str = "kaspa") -> bool:
    """Whether ``address`` is a well-formed address on the ``prefix`` network."""
    try:
        return decode(address)[0] == prefix
    except ValueError:
        return False
