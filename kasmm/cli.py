"""The ``kasmm`` command line: one subcommand per job, each implemented in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from kasmm import __version__
from kasmm.shard import default_metrics_addr, shard_argument


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kasmm",
        description=(
            "Declarative supervisor for Kaspa market-making bots. Each profiles/*.yaml file is "
            "one bot; the built-in simulated venue needs no keys and no network."
        ),
    )
    parser.add_argument("--version", action="version", version=f"kasmm {__version__}")
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default="auto",
        help="log rendering: JSON lines, human console, or auto (console on a terminal)",
    )
    parser.add_argument(
        "--log-level", default="info", help="minimum log level (debug, info, warning, error)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "validate",
        help="validate profile files or directories",
        description=(
            "Parse and validate profiles. Every problem is printed as "
            "path:line:col: profile: field: message. Exit 0 if all valid, 1 if any is invalid, "
            "2 on usage errors."
        ),
    )
    p.add_argument("paths", nargs="+", type=Path, help="profile files (*.yaml, *.yml) or dirs")

    sub.add_parser(
        "schema",
        help="print the profile JSON Schema",
        description="Print the JSON Schema of a profile (for YAML language servers).",
    )

    p = sub.add_parser(
        "run",
        help="run one profile in the foreground",
        description=(
            "Run one profile until Ctrl-C/SIGTERM or --duration, cancel its orders, "
            "print a summary."
        ),
    )
    p.add_argument("profile", type=Path, help="the profile file")
    p.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    p.add_argument("--summary-json", type=Path, default=None, help="also write the summary here")
    p.add_argument(
        "--name", default=None, help="profile to run when the file holds a list of profiles"
    )
    p = sub.add_parser(
        "supervise",
        help="run every profile of a directory (the main job)",
        description=(
            "Run every enabled profile in DIR as its own bot, isolated from the others. Edits to "
            "DIR hot-reload only the changed profiles; an invalid edit keeps the last good "
            "version running. SIGHUP reloads, SIGTERM/SIGINT cancel all orders and exit."
        ),
    )
    p.add_argument("directory", type=Path, help="directory of profile files")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="state directory (default: $STATE_DIRECTORY or ./state)",
    )
    p.add_argument(
        "--metrics-addr",
        default=None,
        help=(
            "HOST:PORT of the loopback status/metrics endpoint ('' to disable; default "
            "127.0.0.1:9301, and 127.0.0.1:9301+I with --shard I/N)"
        ),
    )
    p.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    p.add_argument("--no-watch", action="store_true", help="do not watch DIR for changes")
    p.add_argument(
        "--shard",
        type=shard_argument,
        default=None,
        metavar="I/N",
        help=(
            "run only the profiles whose name hashes to shard I of N (0 <= I < N); invalid "
            "files are still reported by every shard"
        ),
    )

    p = sub.add_parser(
        "reset",
        help="clear a halted profile",
        description=(
            "Clear a profile's kill-switch halt. The reset is recorded in the ledger (with the "
            "operator's name); a running supervisor resumes the profile within seconds."
        ),
    )
    p.add_argument("profile", help="profile name")
    p.add_argument("--state-dir", type=Path, default=None, help="state directory")
    p.add_argument("--operator", default=None, help="who resets (default: the login name)")

    p = sub.add_parser(
        "status",
        help="show the running supervisor's profiles",
        description="Query a running supervisor's endpoint and show each profile's state.",
    )
    p.add_argument("--addr", default="127.0.0.1:9301", help="supervisor endpoint HOST:PORT")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = sub.add_parser(
        "report",
        help="write a self-contained HTML report from the ledger",
        description=(
            "Write one HTML file (no scripts, no external resources: it opens offline) with, per "
            "profile: mid with the profile's resting quotes and fills, inventory against its "
            "target, PnL and drawdown over time, a fill summary, kill-switch events and mode "
            "changes. Charts need matplotlib: pip install 'kasmm[report]'."
        ),
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="state directory holding kasmm.sqlite (default: $STATE_DIRECTORY or ./state)",
    )
    p.add_argument(
        "--profile",
        action="append",
        default=None,
        metavar="NAME",
        help="report only this profile (repeatable; default: every profile in the ledger)",
    )
    p.add_argument(
        "--since",
        default=None,
        metavar="WHEN",
        help=(
            "start of the period: a duration back from now (24h, 90m, 7d, 1h30m), epoch seconds, "
            "or an ISO 8601 time (UTC unless it carries an offset); default: every record"
        ),
    )
    p.add_argument(
        "--profiles",
        type=Path,
        default=None,
        metavar="DIR",
        help="profile directory: adds asset names and the inventory target line",
    )
    p.add_argument(
        "--out", type=Path, default=Path("report.html"), help="output file (default: report.html)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kasmm`` console script and ``python -m kasmm``."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    from kasmm.obs.logs import configure_logging

    configure_logging(fmt=args.log_format, level=args.log_level)

    if args.command == "validate":
        from kasmm.config.commands import validate_command

        return validate_command(args.paths)
    if args.command == "schema":
        from kasmm.config.commands import schema_command

        return schema_command()
    if args.command == "run":
        from kasmm.runner import run_command

        return run_command(
            args.profile, duration=args.duration, summary_json=args.summary_json, name=args.name
        )
    if args.command == "supervise":
        from kasmm.supervise_cmd import supervise_command

        return supervise_command(
            args.directory,
            state_dir=args.state_dir,
            metrics_addr=(
                default_metrics_addr(args.shard)
                if args.metrics_addr is None
                else args.metrics_addr or None
            ),
            duration=args.duration,
            watch=not args.no_watch,
            shard=args.shard,
        )
    if args.command == "reset":
        from kasmm.reset_cmd import reset_command

        return reset_command(args.profile, args.state_dir, args.operator)
    if args.command == "status":
        from kasmm.status_cmd import status_command

        return status_command(args.addr, as_json=args.json)
    if args.command == "report":
        from kasmm.report import report_command

        return report_command(
            args.state_dir,
            args.out,
            profiles=args.profile,
            since=args.since,
            profiles_dir=args.profiles,
        )
    parser.error(f"unknown command {args.command!r}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
