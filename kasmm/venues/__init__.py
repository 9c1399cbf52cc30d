"""Venues: one ``Venue`` protocol, several implementations (simulated, ccxt)."""
