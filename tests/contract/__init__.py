"""The Venue contract suite, shared by every venue implementation."""
