"""Notifications that reach a phone: halts, failures, config errors, a daily summary.

* :mod:`~kasmm.alerts.events`: :class:`Alert` and the wording of each event (pure).
* :mod:`~kasmm.alerts.watch`: the supervisor's state turned into alerts (a pure diff of
  snapshots), and the daily summary's schedule.
* :mod:`~kasmm.alerts.notifier`: :class:`Notifier`, the service the supervisor owns: bounded
  queues, dedup, per-target rate limits, delivery in worker threads with retries.
* :mod:`~kasmm.alerts.deliver`: the Apprise call; :mod:`~kasmm.alerts.redact`: URLs kept out
  of every log line.

Targets and events are configured in ``_notify.yaml`` (:mod:`kasmm.config.notify`). Unrelated
to :mod:`kasmm.obs.notify`, which is systemd's ``sd_notify``.
"""

from kasmm.alerts.events import Alert
from kasmm.alerts.notifier import Notifier

__all__ = ["Alert", "Notifier"]
