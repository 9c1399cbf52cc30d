"""The long-running-process parts of ``kasmm supervise``: signals, directory watch, exit codes.

Kept apart from :mod:`kasmm.supervisor` (which owns the profiles) because they concern the
process and its surroundings, and because :mod:`kasmm.daemon.signals` must import nothing heavy:
the command line installs its handlers before anything else loads. Import no module here.
"""
