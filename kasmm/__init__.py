"""kasmm: config-driven market-making supervisor."""

__version__ = "0.1.0"
