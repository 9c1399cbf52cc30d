"""Pure decision code: domain types, quoting, reconciliation. No I/O, no clocks, no globals."""
