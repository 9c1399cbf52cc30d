"""``--log-format``/``--log-level`` before or after the command (issue 16, point 7)."""

from __future__ import annotations

import argparse

import pytest

from kasmm.cli import _build_parser


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "p.yaml"], ("auto", "info")),
        (["--log-format", "json", "run", "p.yaml"], ("json", "info")),
        (
            ["run", "p.yaml", "--log-format", "console", "--log-level", "debug"],
            ("console", "debug"),
        ),
        (["supervise", "profiles", "--log-format=json"], ("json", "info")),
        # after the command wins over before it
        (["--log-format", "json", "validate", "p", "--log-format", "console"], ("console", "info")),
        (
            ["--log-level", "warning", "backtest", "p.yaml", "--log-format", "json"],
            ("json", "warning"),
        ),
    ],
)
def test_log_options_before_or_after_the_command(
    argv: list[str], expected: tuple[str, str]
) -> None:
    args = _build_parser().parse_args(argv)
    assert (args.log_format, args.log_level) == expected


def test_every_command_accepts_them() -> None:
    parser = _build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in sub.choices.items():
        options = {o for a in command._actions for o in a.option_strings}
        assert {"--log-format", "--log-level"} <= options, name


def test_a_bad_value_after_the_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _build_parser().parse_args(["status", "--log-format", "xml"])
    assert info.value.code == 2 and "invalid choice: 'xml'" in capsys.readouterr().err
