"""``_notify.yaml``: structure, cross-field checks and URL references, each at file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kasmm.config.loader import load_file, load_paths
from kasmm.config.notify import NotifyFile, NotifyTarget

TG = "tgram://123456789:AAbbccddeeffgghhiijj/555"


def write(directory: Path, text: str, name: str = "_notify.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_file_is_loaded_with_defaults_and_shorthands(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        targets:
          - name: phone
            url: ${TG_URL}
            min_level: critical
          - name: hook
            url: ${HOOK_URL}
            events: [halt, daily_summary]
        events:
          pause: false
          halt: {dedup_window_s: 60}
          daily_summary: {at: "18:30", timezone: Europe/Berlin}
        """,
    )
    env = {"TG_URL": TG, "HOOK_URL": "json://127.0.0.1:8080/hook"}
    result = load_paths([tmp_path], env=env)
    assert result.issues == [] and not result.notify_invalid
    cfg = result.notify
    assert cfg is not None
    assert [t.name for t in cfg.targets] == ["phone", "hook"]
    assert not cfg.events.enabled("pause") and cfg.events.enabled("profile_failed")
    assert cfg.events.rule("halt") is not None
    assert cfg.events.halt.dedup_window_s == 60
    assert cfg.events.daily_summary is not None and cfg.events.daily_summary.at == "18:30"
    phone, hook = cfg.targets
    assert phone.wants("halt") and not phone.wants("pause") and not phone.wants("daily_summary")
    assert hook.wants("daily_summary") and not hook.wants("profile_failed")
    # Not a profile file: load_file validates it and yields no profiles.
    assert load_file(tmp_path / "_notify.yaml", env=env) == ([], [])


def test_no_file_and_empty_file(tmp_path: Path) -> None:
    assert load_paths([tmp_path], env={}).notify is None
    write(tmp_path, "")
    result = load_paths([tmp_path], env={})
    assert result.issues == [] and result.notify == NotifyFile()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """\
            targets:
              - {name: phone, url: "tgram://literal/secret"}
            """,
            "2:24: targets[0].url: secrets must be referenced as ${VAR} (an environment "
            "variable or a file in $CREDENTIALS_DIRECTORY), never inlined",
        ),
        (
            """\
            targets:
              - name: phone
                url: ${TG_URL}
                events: [halt, hlat]
            """,
            "4:20: targets[0].events[1]: Input should be 'halt', 'pause', 'profile_failed', "
            "'profile_recovered', 'config_error', 'ledger_trouble', 'lock_busy', "
            "'daily_summary', 'obligation_breach', 'settlement_requested', "
            "'settlement_pending', 'settlement_confirmed' or 'settlement_failed'",
        ),
        (
            """\
            events:
              daily_summary: {at: "25:00"}
            """,
            "2:23: events.daily_summary.at: must be a 24-hour time HH:MM, e.g. 18:00",
        ),
        (
            """\
            events:
              halt: {dedup_window_s: -1}
            """,
            "2:26: events.halt.dedup_window_s: Input should be greater than or equal to 0",
        ),
        (
            """\
            events:
              hault: false
            """,
            "2:3: events.hault: unknown key 'hault' (did you mean 'halt'?); allowed: "
            "config_error, daily_summary, halt, ledger_trouble, lock_busy, obligation_breach, "
            "pause, profile_failed, profile_recovered, settlement_confirmed, settlement_failed, "
            "settlement_pending, settlement_requested",
        ),
        (
            """\
            targets:
              - {name: a, url: "${TG_URL}"}
              - {name: a, url: "${TG_URL}"}
            """,
            "3:12: targets[1].name: duplicate target name (already used by targets[0])",
        ),
        (
            """\
            events:
              daily_summary: {at: "18:00", timezone: Mars/Olympus}
            """,
            "2:42: events.daily_summary.timezone: unknown time zone 'Mars/Olympus' (use an "
            "IANA name such as 'Europe/Berlin')",
        ),
        (
            """\
            targets:
              - {name: a, url: "${NOT_SET}"}
            """,
            "2:20: targets[0].url: environment variable NOT_SET is not set (and no file in "
            "$CREDENTIALS_DIRECTORY)",
        ),
        (
            """\
            targets:
              - {name: a, url: "${BAD_URL}"}
            """,
            "2:20: targets[0].url: ${BAD_URL} does not hold a URL Apprise supports "
            "(see https://github.com/caronc/apprise/wiki)",
        ),
        ("- a list\n", "1:1: -: expected a mapping with a 'targets' key"),
    ],
)
def test_errors_are_located(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    env = {"TG_URL": TG, "BAD_URL": "nosuchservice://CANARY-b4d-url"}
    result = load_paths([tmp_path], env=env)
    assert [str(i) for i in result.issues] == [f"{path}:{expected}"]
    assert result.notify is None and result.notify_invalid
    assert "CANARY" not in str(result.issues)


def test_min_level_filters_by_urgency() -> None:
    target = NotifyTarget(name="t", url="${X}", min_level="warning")
    assert target.wants("halt") and target.wants("pause")
    assert not target.wants("profile_recovered") and not target.wants("daily_summary")
