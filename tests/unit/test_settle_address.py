"""Kaspa address validation and watch-only derivation (:mod:`kasmm.settle.address`).

Expected values are rusty-kaspa's published vectors (:mod:`tests.unit.kaspa_vectors`), never
computed by the code under test. Needs the ``kaspa`` SDK (skipped without it).
"""

from __future__ import annotations

import pytest

from kasmm.settle.address import (
    AccountKey,
    AddressRejected,
    Network,
    parse_account_key,
    receive_address,
    refuse_private_key,
    validate_address,
)
from tests.unit import kaspa_vectors as v

kaspa = pytest.importorskip("kaspa")


@pytest.mark.parametrize(("text", "network", "version"), v.VALID_ADDRESSES)
def test_published_addresses_validate_on_their_network(
    text: str, network: Network, version: str
) -> None:
    address = validate_address(text, network)
    assert (address.text, address.network, address.version) == (text, network, version)
    assert str(address) == text


@pytest.mark.parametrize(("text", "network", "_version"), v.VALID_ADDRESSES)
def test_published_addresses_are_refused_on_the_other_network(
    text: str, network: Network, _version: str
) -> None:
    other: Network = "testnet" if network == "mainnet" else "mainnet"
    with pytest.raises(AddressRejected) as err:
        validate_address(text, other)
    assert err.value.problem == "wrong_network"
    assert f"this plan is for {other}" in str(err.value)


#: rusty-kaspa's AddressError for each invalid vector, as kasmm names it.
_PROBLEM = {
    "DecodingError('1')": "bad_character",
    "DecodingError('|')": "bad_character",
    "InvalidPrefix": "unknown_prefix",
    "MissingPrefix": "missing_prefix",
    "BadChecksum": "bad_checksum",
}


@pytest.mark.parametrize(("text", "rust_error"), v.INVALID_ADDRESSES)
def test_published_invalid_addresses_are_named(text: str, rust_error: str) -> None:
    with pytest.raises(AddressRejected) as err:
        validate_address(text, "mainnet")
    assert err.value.problem == _PROBLEM[rust_error]


def test_a_simnet_address_is_a_wrong_network_not_garbage() -> None:
    simnet = kaspa.Address(v.VALID_ADDRESSES[3][0])
    simnet.prefix = "kaspasim"
    with pytest.raises(AddressRejected) as err:
        validate_address(simnet.to_string(), "mainnet")
    assert err.value.problem == "wrong_network"
    assert "simnet" in str(err.value)


def test_the_ktrv_vector_derives_its_published_testnet_address() -> None:
    key = parse_account_key(v.KTRV_ACCOUNT_KTUB, "testnet")
    assert receive_address(key, 1).text == v.KTRV_RECEIVE_1_TESTNET


def test_the_gen1_account_kpub_is_account_0_of_the_published_master_key() -> None:
    """The one input not printed in rusty-kaspa, re-derived here by the SDK alone."""
    derived = kaspa.PublicKeyGenerator.from_master_xprv(v.GEN1_MASTER_KPRV, False, 0)
    assert derived.to_string() == v.GEN1_ACCOUNT_KPUB


@pytest.mark.parametrize(("index", "expected"), v.GEN1_RECEIVE_MAINNET)
def test_gen1_receive_addresses_mainnet(index: int, expected: str) -> None:
    key = parse_account_key(v.GEN1_ACCOUNT_KPUB, "mainnet")
    address = receive_address(key, index)
    assert (address.text, address.network, address.version) == (expected, "mainnet", "PubKey")
    assert address.text != v.GEN1_CHANGE_0_MAINNET


@pytest.mark.parametrize(("index", "expected"), v.GEN1_RECEIVE_TESTNET)
def test_gen1_receive_addresses_testnet_from_the_same_key_as_tpub(
    index: int, expected: str
) -> None:
    """The same account key, exported with the testnet prefix, gives the testnet vectors."""
    tpub = kaspa.XPub(v.GEN1_ACCOUNT_KPUB).into_string("ktub")
    assert receive_address(parse_account_key(tpub, "testnet"), index).text == expected


def test_the_mnemonic_kpub_vector_is_an_account_key() -> None:
    key = parse_account_key(v.MNEMONIC_ACCOUNT_KPUB, "mainnet")
    assert validate_address(receive_address(key, 0).text, "mainnet").network == "mainnet"


@pytest.mark.parametrize(
    ("text", "network", "problem"),
    [
        (v.KTRV_ACCOUNT_KTUB, "mainnet", "wrong_network"),
        (v.GEN1_ACCOUNT_KPUB, "testnet", "wrong_network"),
        ("ypub" + v.GEN1_ACCOUNT_KPUB[4:], "mainnet", "bad_account_key"),
        (v.GEN1_ACCOUNT_KPUB[:-1] + "x", "mainnet", "bad_account_key"),
        ("kpub", "mainnet", "bad_account_key"),
    ],
)
def test_account_keys_that_cannot_be_used(text: str, network: Network, problem: str) -> None:
    with pytest.raises(AddressRejected) as err:
        parse_account_key(text, network)
    assert err.value.problem == problem


def test_a_key_not_at_the_account_level_is_refused() -> None:
    """Receive addresses of a non-account key would land where no wallet looks."""
    receive_branch = kaspa.XPub(v.GEN1_ACCOUNT_KPUB).derive_child(0).into_string("kpub")
    with pytest.raises(AddressRejected) as err:
        parse_account_key(receive_branch, "mainnet")
    assert err.value.problem == "bad_account_key"
    assert "depth 4" in str(err.value)


@pytest.mark.parametrize("index", [-1, 2**31])
def test_receive_index_out_of_range(index: int) -> None:
    key = parse_account_key(v.GEN1_ACCOUNT_KPUB, "mainnet")
    with pytest.raises(AddressRejected) as err:
        receive_address(key, index)
    assert err.value.problem == "bad_index"


_HEX_SECRET = "b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfef"
_SEED = (
    "hunt bitter praise lift buyer topic crane leopard uniform network inquiry over grain "
    "pass match crush marine strike doll relax fortune trumpet sunny silk"
)


def _ktrv() -> str:
    return str(kaspa.XPrv.from_xprv(v.GEN1_MASTER_KPRV).into_string("ktrv"))


def _custom_prefix_xprv() -> str:
    """An extended private key under a public-looking prefix: caught by parsing, not by name."""
    return str(kaspa.XPrv.from_xprv(v.GEN1_MASTER_KPRV).into_string("kpub"))


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: v.GEN1_MASTER_KPRV, "extended private key"),
        (_ktrv, "extended private key"),
        (_custom_prefix_xprv, "extended private key"),
        (lambda: _HEX_SECRET, "raw private key"),
        (lambda: "0x" + _HEX_SECRET, "raw private key"),
        (lambda: _SEED, "seed phrase"),
    ],
)
def test_private_key_material_is_refused_everywhere_without_echo(make: object, kind: str) -> None:
    assert callable(make)
    secret = str(make())
    for attempt in (
        lambda: refuse_private_key(secret),
        lambda: validate_address(secret, "mainnet"),
        lambda: parse_account_key(secret, "mainnet"),
    ):
        with pytest.raises(AddressRejected) as err:
            attempt()
        assert err.value.problem == "private_key"
        assert kind in str(err.value)
        assert secret not in str(err.value)
        assert secret[4:20] not in str(err.value)
        assert err.value.__cause__ is None and err.value.__context__ is None


def test_public_keys_and_addresses_pass_the_private_key_check() -> None:
    refuse_private_key(v.GEN1_ACCOUNT_KPUB)
    refuse_private_key(v.KTRV_RECEIVE_1_TESTNET)


def test_account_key_repr_shows_only_prefix_and_tail() -> None:
    key = AccountKey(text=v.GEN1_ACCOUNT_KPUB, network="mainnet")
    assert v.GEN1_ACCOUNT_KPUB[4:-6] not in repr(key)
    assert repr(key).startswith("AccountKey(kpub…")
