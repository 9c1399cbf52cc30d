"""The ``kasmm`` command line: parses the arguments and calls the command's module.

Each command lives in :mod:`kasmm.commands` and is imported only when it runs: ``kasmm
supervise`` installs its signal handlers before the slow imports, and ``kasmm status`` stays
quick.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from kasmm import __version__
from kasmm.commands.settle_args import add_settle_parser
from kasmm.shard import default_metrics_addr, processes_argument, shard_argument


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kasmm",
        description=(
            "Declarative supervisor for Kaspa market-making bots. Each profiles/*.yaml file is "
            "one bot; the built-in simulated venue needs no keys and no network."
        ),
    )
    parser.add_argument("--version", action="version", version=f"kasmm {__version__}")
    _add_log_options(parser, default_format="auto", default_level="info")
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
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=(
            "state directory whose profile lock the run holds, so a supervisor cannot run the "
            "profile at the same time (default: $STATE_DIRECTORY or ./state)"
        ),
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
    p.add_argument(
        "--processes",
        type=processes_argument,
        default=1,
        metavar="N|auto",
        help=(
            "run the profiles as N shard processes (--shard i/N each) under this one, which "
            "restarts them, forwards signals and serves every shard's status and metrics on "
            "--metrics-addr; auto: one per CPU (default 1: no child processes)"
        ),
    )

    p = sub.add_parser(
        "backtest",
        help="backtest a profile (or a directory's profiles together) in virtual time",
        description=(
            "Run the profile's own bot (quoting, risk gate, reconciliation) in virtual time on "
            "the simulated venue: the random_walk or as2008 market over --paths seeded paths "
            "(seed + i, in worker processes), or recorded data (--market replay --data FILE). "
            "Prints mean and std of final PnL and inventory, spread, fills, volume, drawdown and "
            "order actions per run; --sweep runs a grid and compares it; --json writes the "
            "result document (schema_version 2, kasmm/backtest/schema.json). Given a "
            "directory, runs every enabled (sim) profile in it together on one virtual "
            "timeline, each on its own venue, and prints each profile's and the group's "
            "figures (--json: the kasmm-backtest-group document)."
        ),
    )
    p.add_argument(
        "profile",
        type=Path,
        help="the profile file (any venue type), or a directory of sim profiles (a group)",
    )
    p.add_argument(
        "--name", default=None, help="profile to run when the file holds a list of profiles"
    )
    p.add_argument(
        "--market",
        choices=("random_walk", "as2008", "replay"),
        default=None,
        help="market model (default: the profile's sim market, else random_walk)",
    )
    p.add_argument("--data", type=Path, default=None, help="replay file (--market replay)")
    p.add_argument("--paths", type=int, default=1, help="seeded paths per run (default 1)")
    p.add_argument(
        "--horizon",
        type=float,
        default=None,
        help="virtual seconds per path (default: as2008 1, random_walk 3600, replay the file)",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="seed of path 0 (default: the profile's venue.seed)"
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a profile field by dotted key, e.g. strategy.gamma=0.1 (repeatable)",
    )
    p.add_argument(
        "--sweep",
        dest="sweeps",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="one run per value, e.g. modes.passive.spread_bps=10,20,40 (repeatable: the "
        "cartesian product)",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="processes (default: one per core; 1: none)"
    )
    p.add_argument(
        "--rate-limit",
        choices=("auto", "profile", "unlimited"),
        default="auto",
        help="the bots' token bucket: the profile's, or unlimited (auto: unlimited on as2008)",
    )
    p.add_argument(
        "--queue-position",
        choices=("back", "front"),
        default="back",
        help="replay: where a new order joins the queue at its price (default back)",
    )
    p.add_argument(
        "--json", dest="json_path", type=Path, default=None, help="also write the result here"
    )
    p.add_argument("--per-path", action="store_true", help="also print every path")
    p.add_argument(
        "--bot-log-level", default="error", help="log level of the backtested bots (default error)"
    )
    p.add_argument(
        "--portfolio",
        default=None,
        metavar="NAME",
        help="with a directory: run only this portfolio's members (its _portfolios.yaml)",
    )

    p = sub.add_parser(
        "record",
        help="record a live market's public books and trades for replay",
        description=(
            "Record the order books and trades of a paper or ccxt profile's market (public data "
            "only, no keys used) for --duration seconds into a replay file (CSV, the "
            "kasmm-replay format) that `kasmm backtest --market replay --data FILE` replays."
        ),
    )
    p.add_argument("profile", type=Path, help="a paper or ccxt profile file")
    p.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    p.add_argument("--duration", type=float, required=True, help="seconds to record")
    p.add_argument("--depth", type=int, default=20, help="book levels per side (default 20)")
    p.add_argument(
        "--name", default=None, help="profile to record when the file holds a list of profiles"
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
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="state directory whose ledger shows the settlements when no supervisor answers",
    )
    p.add_argument(
        "--watch",
        type=float,
        nargs="?",
        const=2.0,
        default=None,
        metavar="SECONDS",
        help="print it again every SECONDS (default 2) until Ctrl-C, in place on a terminal",
    )
    _add_operator_parsers(sub)
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
    p = sub.add_parser(
        "pnl",
        help="PnL attribution per profile and day, from the ledger",
        description=(
            "Per profile, one row per day (in the profile's max_daily_loss time zone, else UTC): "
            "fills, volume, spread capture, fees, revaluation, net, the hold benchmark and net vs "
            "hold, with totals. Reads the ledger read-only: works while the supervisor runs."
        ),
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="state directory holding kasmm.sqlite (default: $STATE_DIRECTORY or ./state)",
    )
    p.add_argument("--days", type=int, default=7, help="days back from today (default 7)")
    p.add_argument(
        "--profile",
        action="append",
        default=None,
        metavar="NAME",
        help="show only this profile (repeatable; default: every profile in the ledger)",
    )
    p.add_argument(
        "--profiles",
        type=Path,
        default=None,
        metavar="DIR",
        help="profile directory for quote assets, time zones and ticks (default: ./profiles)",
    )
    p.add_argument("--json", action="store_true", help="print JSON (exact decimal strings)")
    p = sub.add_parser(
        "hedges",
        help="each fill of a hedged profile with its linked hedge orders, from the ledger",
        description=(
            "Every fill of PROFILE taken in for hedging: its residual and the hedge orders "
            "linked to it (the hedge profile's order, status, parts, fills). Reads the ledger "
            "read-only: works while the supervisor runs."
        ),
    )
    p.add_argument("profile", metavar="PROFILE", help="the hedged profile")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="state directory holding kasmm.sqlite (default: $STATE_DIRECTORY or ./state)",
    )
    p.add_argument("--json", action="store_true", help="print JSON (exact decimal strings)")
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a fill is not fully offset yet (a residual)",
    )
    add_settle_parser(sub)
    # Also after the command (`kasmm supervise DIR --log-format json`), every command's included.
    # SUPPRESS: given there, it overrides the one before the command; absent, it keeps it.
    for command in sub.choices.values():
        _add_log_options(command, default_format=argparse.SUPPRESS, default_level=argparse.SUPPRESS)
    return parser


def _add_operator_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``kasmm top`` and the actions it shares with the command line (the control socket)."""
    p = sub.add_parser(
        "top",
        help="live full-screen console of the running supervisor, with operator actions",
        description=(
            "A live console of a running supervisor: one row per profile, details of the "
            "selected one, actions (reset a halt, pause/resume, switch mode, reload) with "
            "confirmation, sent through the state directory's control socket and recorded with "
            "the operator's name. A plain periodic reprint on a dumb terminal or into a pipe."
        ),
    )
    p.add_argument("--addr", default="127.0.0.1:9301", help="supervisor endpoint HOST:PORT")
    p.add_argument("--state-dir", type=Path, default=None, help="state directory (the socket)")
    p.add_argument("--operator", default=None, help="who acts (default: the login name)")
    p.add_argument("--plain", action="store_true", help="plain periodic reprint, no full screen")
    p.add_argument(
        "--interval", type=float, default=1.0, help="seconds between refreshes (default 1)"
    )
    for action, text in (
        ("pause", "stop a profile (cancels its orders) until resumed"),
        ("resume", "resume a paused profile"),
    ):
        p = sub.add_parser(action, help=text, description=text.capitalize() + ".")
        p.add_argument("profile", help="profile name")
        _add_socket_options(p)
    p = sub.add_parser(
        "mode",
        help="switch a profile's mode until its next scheduled switch",
        description="Switch a running profile's mode (an override until its next scheduled "
        "switch, kept across its bot's restarts).",
    )
    p.add_argument("profile", help="profile name")
    p.add_argument("mode", choices=("aggressive", "passive"))
    _add_socket_options(p)
    p = sub.add_parser(
        "reload",
        help="reload the profile directory (what SIGHUP does)",
        description="Ask every supervisor of the state directory to reload, as SIGHUP does.",
    )
    _add_socket_options(p)


def _add_socket_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="state directory of the supervisor (default: $STATE_DIRECTORY or ./state)",
    )
    parser.add_argument("--operator", default=None, help="who acts (default: the login name)")


def _add_log_options(
    parser: argparse.ArgumentParser, *, default_format: str, default_level: str
) -> None:
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default=default_format,
        help="log rendering: JSON lines, human console, or auto (console on a terminal)",
    )
    parser.add_argument(
        "--log-level", default=default_level, help="minimum log level (debug, info, warning, error)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kasmm`` console script and ``python -m kasmm``."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "supervise" and args.shard is not None and args.processes > 1:
        parser.error("--shard runs one shard, --processes all of them: pick one")
    if args.command == "supervise":
        # First, before the imports that take the next half second: from here on a SIGTERM is
        # a clean stop (and a second one a logged forced exit), never a silent kill.
        from kasmm.daemon.signals import install_process_signals

        install_process_signals()
    from kasmm.obs.logs import configure_logging

    configure_logging(fmt=args.log_format, level=args.log_level)

    if args.command == "validate":
        from kasmm.commands.validate import validate_command

        return validate_command(args.paths)
    if args.command == "schema":
        from kasmm.commands.schema import schema_command

        return schema_command()
    if args.command == "run":
        from kasmm.commands.run import run_command

        return run_command(
            args.profile,
            duration=args.duration,
            summary_json=args.summary_json,
            name=args.name,
            state_dir=args.state_dir,
        )
    if args.command == "supervise":
        from kasmm.commands.supervise import supervise_command

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
            processes=args.processes,
            log_options=(args.log_format, args.log_level),
        )
    if args.command == "backtest":
        from kasmm.commands.backtest import backtest_command

        return backtest_command(
            args.profile,
            name=args.name,
            market=args.market,
            data=args.data,
            paths=args.paths,
            horizon=args.horizon,
            seed=args.seed,
            sets=args.sets,
            sweeps=args.sweeps,
            workers=args.workers,
            rate_limit=args.rate_limit,
            queue_position=args.queue_position,
            json_path=args.json_path,
            per_path=args.per_path,
            bot_log_level=args.bot_log_level,
            portfolio=args.portfolio,
        )
    if args.command == "record":
        from kasmm.commands.record import record_command

        return record_command(
            args.profile, out=args.out, duration=args.duration, depth=args.depth, name=args.name
        )
    if args.command == "reset":
        from kasmm.commands.reset import reset_command

        return reset_command(args.profile, args.state_dir, args.operator)
    if args.command == "status":
        from kasmm.commands.status import status_command

        return status_command(
            args.addr, as_json=args.json, watch=args.watch, state_dir=args.state_dir
        )
    if args.command == "top":
        from kasmm.commands.top import top_command

        return top_command(
            args.addr,
            state_dir=args.state_dir,
            operator=args.operator,
            plain=args.plain,
            interval=args.interval,
        )
    if args.command in ("pause", "resume", "mode", "reload"):
        from kasmm.commands.actions import action_command

        return action_command(
            args.command,
            getattr(args, "profile", None),
            mode=getattr(args, "mode", None),
            state_dir=args.state_dir,
            operator=args.operator,
        )
    if args.command == "report":
        from kasmm.commands.report import report_command

        return report_command(
            args.state_dir,
            args.out,
            profiles=args.profile,
            since=args.since,
            profiles_dir=args.profiles,
        )
    if args.command == "pnl":
        from kasmm.commands.pnl import pnl_command

        return pnl_command(
            args.state_dir,
            days=args.days,
            profiles=args.profile,
            profiles_dir=args.profiles,
            as_json=args.json,
        )
    if args.command == "hedges":
        from kasmm.commands.hedges import hedges_command

        return hedges_command(args.profile, args.state_dir, as_json=args.json, check=args.check)
    if args.command == "settle":
        from kasmm.commands.settle_args import run_settle

        return run_settle(parser, args)
    parser.error(f"unknown command {args.command!r}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
