"""``kasmm top``: the operator's live terminal console of a running supervisor.

* :mod:`~kasmm.console.rows`: a ``/status`` document as cells for people (shared with
  ``kasmm status``).
* :mod:`~kasmm.console.source`: where the console reads ``/status`` and sends actions (the
  control socket of the profile's supervisor).
* :mod:`~kasmm.console.plain`: the plain periodic reprint (a dumb terminal, not a TTY).
* :mod:`~kasmm.console.app`: the full-screen Textual application.
"""
