"""Kaspa destination addresses and watch-only receive-address derivation, through the SDK.

A settlement sends KAS off an exchange to an address the operator controls. Two mistakes here
lose money or keys for good: an address on the wrong network (a ``kaspatest:`` address in a
mainnet plan, which an exchange may even accept), and a private key pasted where a public one
belongs (it would then sit in a config file on the trading host). So:

- :func:`validate_address` parses with the SDK (bech32 checksum, characters, version) and then
  checks the network prefix, with one :class:`AddressRejected` per problem, named;
- :func:`parse_account_key` accepts only an extended *public* key at the account level
  (``m/44'/111111'/account'``, depth 3: what Kaspa wallets export) and :func:`receive_address`
  derives ``<account>/0/<index>`` from it, as the rusty-kaspa wallet does;
- everything that parses as a private key (an extended private key, 64 hex digits, a seed
  phrase) is refused first, and no error message ever repeats the refused text.

The ``kaspa`` SDK is a native wheel: it is imported on first use, so that configuration code
that never meets a Kaspa address does not need it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "AccountKey",
    "AddressProblem",
    "AddressRejected",
    "KaspaAddress",
    "Network",
    "parse_account_key",
    "receive_address",
    "refuse_private_key",
    "validate_address",
]

Network = Literal["mainnet", "testnet"]

#: The bech32 human-readable part of each network's addresses.
ADDRESS_PREFIX: Final[dict[Network, str]] = {"mainnet": "kaspa", "testnet": "kaspatest"}
#: Every prefix rusty-kaspa knows (simnet and devnet are not settlement networks).
_KNOWN_PREFIXES: Final = frozenset({"kaspa", "kaspatest", "kaspasim", "kaspadev"})

#: Extended public key prefixes accepted, and the network each one announces. ``kpub``/``ktub``
#: are Kaspa's own (rusty-kaspa's ``kaspa_bip32::Prefix``); ``xpub``/``tpub`` are the BIP-32
#: ones some tools export. The SDK parses all of them the same way; the prefix only says which
#: network the wallet meant.
_XPUB_NETWORK: Final[dict[str, Network]] = {
    "kpub": "mainnet",
    "xpub": "mainnet",
    "ktub": "testnet",
    "tpub": "testnet",
}
#: Extended *private* key prefixes (Kaspa's and BIP-32/49/84 ones).
_XPRV_PREFIXES: Final = ("kprv", "ktrv", "xprv", "tprv", "yprv", "zprv", "uprv", "vprv")
#: A raw secp256k1 secret key in hex (also the form the SDK's ``PrivateKey`` takes).
_HEX_SECRET: Final = re.compile(r"(?:0x)?[0-9a-fA-F]{64}")
#: Account keys sit at m/44'/111111'/account': depth 3.
ACCOUNT_DEPTH: Final = 3
#: Receive indexes are non-hardened BIP-32 child numbers.
MAX_INDEX: Final = 2**31 - 1

AddressProblem = Literal[
    "missing_prefix",
    "unknown_prefix",
    "wrong_network",
    "bad_checksum",
    "bad_character",
    "invalid_address",
    "private_key",
    "bad_account_key",
    "bad_index",
]


class AddressRejected(ValueError):
    """A destination (address or account key) settlement must not use.

    :attr:`problem` names the problem for code (config errors, tests); the message says it for
    people and never contains the rejected text when that could be a secret.
    """

    def __init__(self, problem: AddressProblem, message: str) -> None:
        super().__init__(message)
        self.problem: AddressProblem = problem


@dataclass(frozen=True, slots=True)
class KaspaAddress:
    """A validated Kaspa address: its canonical text, network and version.

    :param text: the address as the SDK prints it (``kaspa:q...``).
    :param network: the network its prefix names.
    :param version: ``PubKey`` (Schnorr), ``PubKeyECDSA`` or ``ScriptHash``.
    """

    text: str
    network: Network
    version: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class AccountKey:
    """A watch-only account key (an extended public key at depth 3) for one network.

    :param text: the key as given (public, but it reveals every address of the account: the
        repr shows only its prefix and tail).
    :param network: the network receive addresses are encoded for.
    """

    text: str
    network: Network

    def __repr__(self) -> str:
        return f"AccountKey({self.text[:4]}…{self.text[-6:]}, network={self.network!r})"


def _sdk() -> ModuleType:
    """The ``kaspa`` SDK module, imported on first use."""
    import kaspa

    return kaspa


def refuse_private_key(text: str) -> None:
    """Raise if ``text`` is, or looks like, private key material.

    Checked before anything else touches the text: an extended private key (by prefix, or
    because the SDK parses it as one), a 64-hex-digit secret key, or a seed phrase (twelve or
    more words). The message names the kind, never the text.

    :raises AddressRejected: with ``problem="private_key"``.
    """
    candidate = text.strip()
    kind: str | None = None
    if candidate[:4].lower() in _XPRV_PREFIXES:
        kind = "an extended private key"
    elif _HEX_SECRET.fullmatch(candidate):
        kind = "a raw private key (64 hex digits)"
    elif len(candidate.split()) >= 12:
        kind = "a seed phrase"
    elif _is_serialized_private_key(candidate):
        kind = "an extended private key"
    if kind is not None:
        raise AddressRejected(
            "private_key",
            f"this looks like {kind}; settlement takes only an address or a watch-only "
            "extended public key (kpub/xpub) and never a private key. Remove it from the "
            "configuration and treat it as exposed.",
        )


def validate_address(text: str, network: Network) -> KaspaAddress:
    """Parse a Kaspa address with the SDK and check that it belongs to ``network``.

    :param text: the address, with its prefix (``kaspa:`` or ``kaspatest:``).
    :param network: the network the settlement runs on.
    :return: the address in canonical form.
    :raises AddressRejected: ``private_key``, ``missing_prefix``, ``unknown_prefix``,
        ``bad_checksum``, ``bad_character``, ``invalid_address`` or ``wrong_network``.
    """
    refuse_private_key(text)
    expected = ADDRESS_PREFIX[network]
    prefix, sep, _ = text.partition(":")
    if not sep:
        raise AddressRejected(
            "missing_prefix", f"a Kaspa address starts with '{expected}:' on {network}"
        )
    if prefix not in _KNOWN_PREFIXES:
        raise AddressRejected(
            "unknown_prefix",
            f"unknown address prefix {prefix!r}: a {network} address starts with '{expected}:'",
        )
    try:
        address = _sdk().Address(text)
    except Exception as exc:
        raise _sdk_address_error(str(exc)) from None
    if address.prefix != expected:
        raise AddressRejected(
            "wrong_network",
            f"{text} is a {_network_name(address.prefix)} address; "
            f"this plan is for {network} ('{expected}:')",
        )
    return KaspaAddress(text=address.to_string(), network=network, version=address.version)


def parse_account_key(text: str, network: Network) -> AccountKey:
    """Accept a watch-only account key (``kpub``/``xpub``; ``ktub``/``tpub`` on testnet).

    The key must be an extended public key at the account level (depth 3, as Kaspa wallets
    export it): derivation from any other level gives addresses the operator's wallet never
    shows, so funds would arrive somewhere nobody watches.

    :raises AddressRejected: ``private_key``, ``bad_account_key`` or ``wrong_network``.
    """
    refuse_private_key(text)
    prefix = text[:4]
    announced = _XPUB_NETWORK.get(prefix)
    if announced is None:
        raise AddressRejected(
            "bad_account_key",
            f"an account key starts with one of {', '.join(_XPUB_NETWORK)}; got {prefix!r}",
        )
    if announced != network:
        raise AddressRejected(
            "wrong_network", f"a {prefix} key belongs to {announced}; this plan is for {network}"
        )
    kaspa = _sdk()
    try:
        xpub = kaspa.XPub(text)
        kaspa.PublicKeyGenerator.from_xpub(text)
    except Exception as exc:
        raise AddressRejected(
            "bad_account_key", f"not a valid extended public key: {exc}"
        ) from None
    if xpub.depth != ACCOUNT_DEPTH:
        raise AddressRejected(
            "bad_account_key",
            f"the key is at depth {xpub.depth}; export the account key "
            f"(m/44'/111111'/<account>', depth {ACCOUNT_DEPTH}) from the wallet",
        )
    return AccountKey(text=text, network=network)


def receive_address(key: AccountKey, index: int) -> KaspaAddress:
    """The ``index``-th receive address of ``key`` (path ``<account>/0/<index>``).

    :param index: 0 to 2**31 - 1 (non-hardened).
    :raises AddressRejected: ``bad_index``.
    """
    if not 0 <= index <= MAX_INDEX:
        raise AddressRejected("bad_index", f"receive index {index} is outside 0..{MAX_INDEX}")
    generator = _sdk().PublicKeyGenerator.from_xpub(key.text)
    address = generator.receive_address(key.network, index)
    return KaspaAddress(text=address.to_string(), network=key.network, version=address.version)


_BASE58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
#: BIP-32 serialization: 4 version, 1 depth, 4 fingerprint, 4 child, 32 chain code, 33 key
#: (a private key is 0x00 + 32 bytes, a public one 0x02/0x03 + x), then a 4-byte checksum.
_XKEY_LEN: Final = 82
_XKEY_KEY_OFFSET: Final = 45


def _is_serialized_private_key(text: str) -> bool:
    """Whether ``text`` is a BIP-32 serialized key holding a private key, whatever its prefix.

    The prefix is only a label: a private key re-labelled ``kpub`` is still one. The key byte
    tells (0x00 for a private key), so this reads it rather than trusting the first letters.
    """
    if not 100 <= len(text) <= 120 or any(c not in _BASE58 for c in text):
        return False
    number = 0
    for char in text:
        number = number * 58 + _BASE58.index(char)
    raw = number.to_bytes(_XKEY_LEN, "big") if number.bit_length() <= _XKEY_LEN * 8 else b""
    return len(raw) == _XKEY_LEN and raw[_XKEY_KEY_OFFSET] == 0


def _network_name(prefix: str) -> str:
    for network, known in ADDRESS_PREFIX.items():
        if known == prefix:
            return network
    return {"kaspasim": "simnet", "kaspadev": "devnet"}.get(prefix, prefix)


def _sdk_address_error(message: str) -> AddressRejected:
    """Name the problem in the SDK's ``AddressError`` text (rusty-kaspa ``crypto/addresses``)."""
    lowered = message.lower()
    if "checksum" in lowered:
        return AddressRejected("bad_checksum", f"the address checksum is wrong ({message})")
    if "invalid character" in lowered:
        return AddressRejected(
            "bad_character", f"the address has a character bech32 forbids ({message})"
        )
    return AddressRejected("invalid_address", f"not a Kaspa address ({message})")
