"""``kasmm supervise DIR --processes N``: one parent process running N shard processes.

The parent (:mod:`kasmm.fleet.parent`) starts ``kasmm supervise DIR --shard i/N`` for each
shard (:mod:`kasmm.fleet.shard`), restarts the ones that crash, forwards signals, talks to
systemd, and serves one ``/status`` and ``/metrics`` for all of them
(:mod:`kasmm.fleet.merge`). It imports no bot, venue or ledger code of its own: everything that
trades runs in the children, so a parent stays small and has nothing to crash on.
"""
