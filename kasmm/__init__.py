"""kasmm: config-driven market-making supervisor."""

from kasmm.native import activate

__version__ = "0.1.0"

# Before any other kasmm module loads: run the mypyc-compiled hot path only when its build
# matches the source beside it (kasmm/native.py).
activate()
