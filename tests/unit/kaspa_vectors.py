"""Published Kaspa address and derivation vectors (copied, never computed by kasmm's code).

Source: github.com/kaspanet/rusty-kaspa at 593399eb0187764c11f7f5c3729ae63d4c8e6505.

- ``crypto/addresses/src/lib.rs``, ``mod tests``: ``cases()`` (valid encodings) and
  ``test_errors()`` (invalid ones, with the ``AddressError`` each must give).
- ``wallet/keys/src/derivation/gen1/hd.rs``, ``mod tests``:
  ``address_test_by_ktrv`` (account ``ktub`` and its testnet receive address 1),
  ``gen1_receive_addresses`` / ``generate_kaspatest_addresses`` (receive addresses 0..19 of
  account 0 of the master key ``GEN1_MASTER_KPRV``, mainnet and testnet), and
  ``wallet_from_mnemonic`` (an account ``kpub``).

The keys below are public test vectors of rusty-kaspa's own test suite (no funds, published
in the repository); ``GEN1_MASTER_KPRV`` is here only to prove the one input that is not
printed in the source (see ``GEN1_ACCOUNT_KPUB``) and to check that a real extended private key
is refused.
"""

from __future__ import annotations

from typing import Final

# cspell:disable

# --- crypto/addresses/src/lib.rs: cases() -------------------------------------------------
#: (address, network, version) that must parse.
VALID_ADDRESSES: Final = (
    (
        "kaspatest:qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhqrxplya",
        "testnet",
        "PubKey",
    ),
    (
        "kaspatest:qyqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhe837j2d",
        "testnet",
        "PubKeyECDSA",
    ),
    (
        "kaspatest:qxaqrlzlf6wes72en3568khahq66wf27tuhfxn5nytkd8tcep2c0vrse6gdmpks",
        "testnet",
        "PubKeyECDSA",
    ),
    (
        "kaspa:qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqkx9awp4e",
        "mainnet",
        "PubKey",
    ),
    (
        "kaspa:qp0l70zd5x85ttwd6jv7g3s3a8llzj96d8dncn4zmhv4tlzx5k2jyqh70xmfj",
        "mainnet",
        "PubKey",
    ),
)

# --- crypto/addresses/src/lib.rs: test_errors() --------------------------------------------
#: (address, AddressError there) that must fail.
INVALID_ADDRESSES: Final = (
    ("kaspa:qqqqqqqqqqqqq1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqkx9awp4e", "DecodingError('1')"),
    ("kaspa:qqqqqqqqqqqqq|qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqkx9awp4e", "DecodingError('|')"),
    ("kaspa1:qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqkx9awp4e", "InvalidPrefix"),
    ("kaspaqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqkx9awp4e", "MissingPrefix"),
    ("kaspa:qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqkx9awp4l", "BadChecksum"),
    ("kaspa:qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqkx9awp4e", "BadChecksum"),
)

# --- wallet/keys/src/derivation/gen1/hd.rs: address_test_by_ktrv ---------------------------
#: Account 0 of the mnemonic "hunt bitter praise ..." as rusty-kaspa prints it (testnet).
KTRV_ACCOUNT_KTUB: Final = (
    "ktub23beJLczbxoS4emYHxm5H2rPnXJPGTwjNLAc8JyjHnSFLPMJBj5h3U8oWbn1x1jayZRov6uhvGd4zUGrWH6Pk"
    "YZMWsykUsQWYqjbLnHrzUE"
)
#: Its receive address 1 on testnet.
KTRV_RECEIVE_1_TESTNET: Final = (
    "kaspatest:qrc2959g0pqda53glnfd238cdnmk24zxzkj8n5x83rkktx4h73dkc4ave6wyg"
)

# --- wallet/keys/src/derivation/gen1/hd.rs: wallet_from_mnemonic -----------------------------
#: An account kpub (mainnet) of the mnemonic "fringe ceiling crater ...".
MNEMONIC_ACCOUNT_KPUB: Final = (
    "kpub2HtoTgsG6e1c7ixJ6JY49otNSzhEKkwnH6bsPHLAXUdYnfEuYw9LnhT7uRzaS4LSeit2rzutV6z8Fs9usdEGK"
    "nNe6p1JxfP71mK8rbUfYWo"
)

# --- wallet/keys/src/derivation/gen1/hd.rs: hd_wallet_gen1 and friends -----------------------
#: The master key those tests derive account 0 from (public test key).
GEN1_MASTER_KPRV: Final = (
    "kprv5y2qurMHCsXYrNfU3GCihuwG3vMqFji7PZXajMEqyBkNh9UZUJgoHYBLTKu1eM4MvUtomcXPQ3Sw9HZ5ebbM4"
    "byoUciHo1zrPJBQfqpLorQ"
)
#: Account 0 of GEN1_MASTER_KPRV (m/44'/111111'/0') as a kpub. Not printed in rusty-kaspa:
#: obtained once with kaspa 2.1.0 ``PublicKeyGenerator.from_master_xprv(GEN1_MASTER_KPRV,
#: False, 0).to_string()`` (the test re-derives it), so the addresses below, which ARE printed
#: there, check derivation from a watch-only key end to end.
GEN1_ACCOUNT_KPUB: Final = (
    "kpub2K5JP5BKvfwttwv3aCdLAiF26nZugo8HA5SNv51hHCRRf5fWx8qPYjNxRBNc8tracpahrC3HpqK5VoaTS9hrT"
    "1q7LuzQL4LchptgsHhsThv"
)
#: gen1_receive_addresses(): (index, mainnet address).
GEN1_RECEIVE_MAINNET: Final = (
    (0, "kaspa:qz7ulu4c25dh7fzec9zjyrmlhnkzrg4wmf89q7gzr3gfrsj3uz6xjellj43pf"),
    (1, "kaspa:qzn3qjzf2nzyd3zj303nk4sgv0aae42v3ufutk5xsxckfels57dxjjed4qvlx"),
    (2, "kaspa:qpakxqlesqywgkq7rg4wyhjd93kmw7trkl3gpa3vd5flyt59a43yyjp28qsku"),
    (7, "kaspa:qqnys5nyennjkvyl77vwneq5j2vmjss57zerd88ptzaeqhm998smxw28uth8l"),
    (19, "kaspa:qzf5mxtvk8wgp8gr3dcj3dkzdu6w4dgpvp2f0gm9pepv9vazxrhy577fy87rt"),
    # The list's 21st entry (the Rust loop checks 0..20 only).
    (20, "kaspa:qz44rhjkrddak9vf5z4swlmenxtfhmqc47d0lyf0j7ednyjln0u824ue33gvr"),
)
#: generate_kaspatest_addresses(): (index, testnet address).
GEN1_RECEIVE_TESTNET: Final = (
    (0, "kaspatest:qz7ulu4c25dh7fzec9zjyrmlhnkzrg4wmf89q7gzr3gfrsj3uz6xjceef60sd"),
    (1, "kaspatest:qzn3qjzf2nzyd3zj303nk4sgv0aae42v3ufutk5xsxckfels57dxjnltw0jwz"),
    (19, "kaspatest:qzf5mxtvk8wgp8gr3dcj3dkzdu6w4dgpvp2f0gm9pepv9vazxrhy5lc0lgqj0"),
)
#: gen1_change_addresses()[0]: the change branch, which a receive address must never equal.
GEN1_CHANGE_0_MAINNET: Final = "kaspa:qrqrnyzdwh9ec2q05guzy3vv33f86nvdyw52qwlmk0mewzx3dgdss3pmcd692"

# cspell:enable
