"""Settlement to a Kaspa wallet, chain side (issue 20): addresses, watch-only keys, the node.

- :mod:`.address`: validate a destination address for a network and derive the n-th receive
  address of a watch-only account key (``kpub``/``xpub``), through the ``kaspa`` SDK; anything
  that looks like a private key or a seed phrase is refused.
- :mod:`.node`: the narrow :class:`~.node.KaspaNode` protocol settlement needs (is the node
  usable, the virtual DAA score, where a transaction's outputs to an address are) and the pure
  confirmation count over its answers.
- :mod:`.sdk_node`: :class:`~.sdk_node.SdkKaspaNode`, the protocol over the SDK's wRPC client.

Exchange side and execution:

- :mod:`.desk`: the :class:`~.desk.WithdrawalDesk` port; :mod:`.ccxt_desk` implements it over
  ccxt, :mod:`.ccxt_refusals` decides whether a failed withdrawal was refused or is unknown.
- :mod:`.destination`: each sweep's address (fixed, or the next receive index of an xpub).
- :mod:`.executor`: :class:`~.executor.Settler`, which records a sweep before requesting it,
  never requests it twice, and follows it to ``confirmed``; :mod:`.lookup` names sweeps and
  finds their withdrawals again.

The SDK (PyPI ``kaspa``, a native wheel) is imported lazily by the modules that need it, so
``import kasmm.settle`` works without it.
"""
