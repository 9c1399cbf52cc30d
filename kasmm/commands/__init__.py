"""The ``kasmm`` commands, one module each; :mod:`kasmm.cli` parses the arguments and calls them.

``supervise`` (the daemon), ``run`` (one profile in the foreground), ``validate``, ``schema``,
``backtest``, ``record``, ``report``, ``reset`` and ``status``. Each module is the thin part a
command adds (arguments to calls, exit statuses, what is printed); the work is in the packages
they call. Nothing is imported here: the command line loads only the command it runs.
"""
