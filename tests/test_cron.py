"""cron/run.sh: steps per mode, exit codes, the log file and the per-config lock.

The real script runs with subprocess against stub `feedgen` and `audiences` commands (RETARGET_BIN) that
record their arguments, print a line to stdout and stderr, and sleep and exit as environment variables say.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

if shutil.which("flock") is None:
    pytest.skip("flock (util-linux) is not installed", allow_module_level=True)

SCRIPT = Path(__file__).resolve().parent.parent / "cron" / "run.sh"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
LOG_NAME = re.compile(r"run-\d{8}T\d{6}Z-(feeds|audiences|all)(\.\d+)?\.log")

# One stub for both commands: STUB_<COMMAND>_<SUBCOMMAND>_RC / _SLEEP choose its exit code and sleep.
STUB = r"""#!/usr/bin/env bash
set -u
name=${0##*/}
sub=${1:-}
key=STUB_${name^^}_${sub^^}
key=${key//[^A-Z0-9_]/_}
rc_var=${key}_RC
sleep_var=${key}_SLEEP
line=$name
for arg in "$@"; do line+=$'\t'$arg; done
printf '%s\n' "$line" >>"$STUB_RECORD"
echo "stdout from $name $sub TZ=${TZ:-}"
echo "stderr from $name $sub" >&2
sleep "${!sleep_var:-0}"
exit "${!rc_var:-0}"
"""


def write_stubs(bin_dir: Path, names: tuple[str, ...] = ("feedgen", "audiences")) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = bin_dir / name
        path.write_text(STUB)
        path.chmod(0o755)


class Env:
    """A config in its own folder, stub commands, and helpers to run the script and read what happened."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.config_dir = tmp_path / "shop"
        self.config_dir.mkdir()
        self.config = self.config_dir / "retarget.yaml"
        self.config.write_text("shop: {name: Test}\n")
        self.bin = tmp_path / "bin"
        write_stubs(self.bin)
        self.record = tmp_path / "calls.txt"
        self.log_dir = self.config_dir / "out" / "logs"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RETARGET_", "STUB_"))}
        self.env.update(RETARGET_BIN=str(self.bin), STUB_RECORD=str(self.record))

    def environ(self, **extra: str) -> dict[str, str]:
        return {**self.env, **extra}

    def run(self, *args: str, script: Path = SCRIPT, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args],
            env=self.environ(**extra),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(SCRIPT), *args],
            env=self.environ(**extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def calls(self) -> list[list[str]]:
        if not self.record.exists():
            return []
        return [line.split("\t") for line in self.record.read_text().splitlines()]

    def wait_for_calls(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.calls()) < count:
            assert time.monotonic() < deadline, f"stub was not called {count} time(s): {self.calls()}"
            time.sleep(0.02)

    def logs(self, log_dir: Path | None = None) -> list[Path]:
        folder = log_dir or self.log_dir
        return sorted(folder.glob("run-*.log")) if folder.is_dir() else []

    def only_log(self, log_dir: Path | None = None) -> str:
        logs = self.logs(log_dir)
        assert len(logs) == 1, logs
        return logs[0].read_text()


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


@pytest.fixture
def finish() -> Iterator[list[subprocess.Popen[str]]]:
    """Background runs started by a test; killed and reaped if the test fails before they end."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def feeds_call(config: Path) -> list[str]:
    return ["feedgen", "build", "--config", str(config)]


def build_call(config: Path, *extra: str) -> list[str]:
    return ["audiences", "build", "--config", str(config), *extra]


def sync_call(config: Path) -> list[str]:
    return ["audiences", "sync", "--config", str(config)]


# ---- modes and steps ---------------------------------------------------------------------------------------


def test_all_runs_feeds_then_build_then_sync_with_pass_through_args(env: Env) -> None:
    result = env.run(str(env.config), "all", "--as-of", "2026-11-20")

    assert result.returncode == 0, result.stderr
    assert env.calls() == [
        feeds_call(env.config),
        build_call(env.config, "--as-of", "2026-11-20"),
        sync_call(env.config),
    ]
    # not a terminal (cron): silent on success, everything is in the log
    assert result.stdout == ""
    assert result.stderr == ""


def test_default_mode_is_all(env: Env) -> None:
    result = env.run(str(env.config))

    assert result.returncode == 0, result.stderr
    assert env.calls() == [feeds_call(env.config), build_call(env.config), sync_call(env.config)]
    assert re.fullmatch(r"run-\d{8}T\d{6}Z-all\.log", env.logs()[0].name)


def test_feeds_mode_runs_only_feedgen(env: Env) -> None:
    result = env.run(str(env.config), "feeds")

    assert result.returncode == 0, result.stderr
    assert env.calls() == [feeds_call(env.config)]
    assert env.logs()[0].name.endswith("-feeds.log")


def test_audiences_mode_runs_build_then_sync(env: Env) -> None:
    result = env.run(str(env.config), "audiences", "--as-of", "2026-11-20")

    assert result.returncode == 0, result.stderr
    assert env.calls() == [build_call(env.config, "--as-of", "2026-11-20"), sync_call(env.config)]
    assert env.logs()[0].name.endswith("-audiences.log")


def test_failing_feeds_still_runs_the_audiences_and_exits_with_its_code(env: Env) -> None:
    result = env.run(str(env.config), "all", STUB_FEEDGEN_BUILD_RC="1")

    assert result.returncode == 1
    assert env.calls() == [feeds_call(env.config), build_call(env.config), sync_call(env.config)]
    # under cron a failure prints a short summary (mailed to MAILTO) naming the log
    assert "failed (exit 1)" in result.stderr
    assert "feeds=1" in result.stderr
    assert str(env.logs()[0]) in result.stderr


def test_failing_audiences_build_skips_sync(env: Env) -> None:
    result = env.run(str(env.config), "audiences", STUB_AUDIENCES_BUILD_RC="1")

    assert result.returncode == 1
    assert env.calls() == [build_call(env.config)]
    log = env.only_log()
    assert "run: step audiences-sync: skipped (audiences build failed)" in log
    assert "end result=failed exit=1" in log


def test_failing_build_in_mode_all_skips_only_sync(env: Env) -> None:
    result = env.run(str(env.config), "all", STUB_AUDIENCES_BUILD_RC="2")

    assert result.returncode == 2
    assert env.calls() == [feeds_call(env.config), build_call(env.config)]


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ({"STUB_FEEDGEN_BUILD_RC": "1", "STUB_AUDIENCES_BUILD_RC": "2"}, 2),
        ({"STUB_FEEDGEN_BUILD_RC": "2", "STUB_AUDIENCES_BUILD_RC": "1"}, 2),
        ({"STUB_FEEDGEN_BUILD_RC": "2", "STUB_AUDIENCES_SYNC_RC": "1"}, 2),
        ({"STUB_FEEDGEN_BUILD_RC": "1", "STUB_AUDIENCES_SYNC_RC": "3"}, 3),
        ({"STUB_AUDIENCES_SYNC_RC": "1"}, 1),
    ],
)
def test_the_highest_exit_code_wins(env: Env, codes: dict[str, str], expected: int) -> None:
    env.env.update(codes)
    result = env.run(str(env.config), "all")

    assert result.returncode == expected
    log = env.only_log()
    assert f"end result=failed exit={expected}" in log


def test_a_missing_command_is_exit_127_and_the_other_steps_still_run(env: Env) -> None:
    (env.bin / "audiences").unlink()

    result = env.run(str(env.config), "all")

    assert result.returncode == 127
    assert env.calls() == [feeds_call(env.config)]
    assert "step audiences-build: command not found" in env.only_log()


# ---- where the commands come from --------------------------------------------------------------------------


def test_commands_come_from_the_projects_venv_next_to_the_script(env: Env, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "cron").mkdir(parents=True)
    script = project / "cron" / "run.sh"
    shutil.copy2(SCRIPT, script)
    write_stubs(project / ".venv" / "bin")
    del env.env["RETARGET_BIN"]

    result = env.run(str(env.config), "feeds", script=script, PATH="/usr/bin:/bin")

    assert result.returncode == 0, result.stderr
    assert env.calls() == [feeds_call(env.config)]
    assert f"{project}/.venv/bin/feedgen build" in env.only_log()


def test_commands_come_from_path_without_a_venv(env: Env, tmp_path: Path) -> None:
    script = tmp_path / "elsewhere" / "run.sh"
    script.parent.mkdir()
    shutil.copy2(SCRIPT, script)
    del env.env["RETARGET_BIN"]

    result = env.run(str(env.config), "audiences", script=script, PATH=f"{env.bin}:/usr/bin:/bin")

    assert result.returncode == 0, result.stderr
    assert env.calls() == [build_call(env.config), sync_call(env.config)]


# ---- the log -----------------------------------------------------------------------------------------------


def test_the_log_is_private_timestamped_and_has_every_steps_output_and_exit_code(env: Env) -> None:
    before = datetime.now(UTC)
    # a local time zone far from UTC: the stamps must still be UTC, and the steps keep the caller's TZ
    result = env.run(str(env.config), "all", STUB_AUDIENCES_SYNC_RC="1", TZ="Asia/Tokyo")

    assert result.returncode == 1
    [log_path] = env.logs()
    assert log_path.parent == env.log_dir  # default: <dir of CONFIG>/out/logs
    assert LOG_NAME.fullmatch(log_path.name)
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    name_time = datetime.strptime(log_path.name[4:20], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((name_time - before).total_seconds()) < 60

    lines = log_path.read_text().splitlines()
    for line in lines:
        assert re.match(rf"{STAMP} \S+: ", line), line
    first_stamp = datetime.strptime(lines[0][:20], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((first_stamp - before).total_seconds()) < 60

    assert re.search(r"run: start mode=all config=\S*retarget\.yaml", lines[0])
    text = "\n".join(lines)
    for step in ("feeds", "audiences-build"):
        assert re.search(rf"run: step {step}: exit 0 in \d+s", text)
    assert re.search(r"run: step audiences-sync: exit 1 in \d+s", text)
    # each step's stdout and stderr, tagged with the step
    assert re.search(rf"{STAMP} feeds: stdout from feedgen build TZ=Asia/Tokyo$", text, re.M)
    assert re.search(rf"{STAMP} feeds: stderr from feedgen build$", text, re.M)
    assert re.search(rf"{STAMP} audiences-build: stdout from audiences build", text)
    assert re.search(rf"{STAMP} audiences-sync: stderr from audiences sync$", text, re.M)
    assert re.search(
        r"run: end result=failed exit=1 steps: feeds=0 audiences-build=0 audiences-sync=1", lines[-1]
    )


def test_log_dir_from_the_environment(env: Env, tmp_path: Path) -> None:
    log_dir = tmp_path / "var" / "log" / "retarget"

    result = env.run(str(env.config), "feeds", RETARGET_LOG_DIR=str(log_dir))

    assert result.returncode == 0, result.stderr
    assert "run: end result=ok exit=0" in env.only_log(log_dir)
    assert stat.S_IMODE(log_dir.stat().st_mode) == 0o700
    assert not env.log_dir.exists()


def test_interactive_runs_also_show_the_log_on_the_terminal(env: Env) -> None:
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [str(SCRIPT), str(env.config), "feeds"],
            env=env.environ(),
            stdout=terminal,
            stderr=subprocess.DEVNULL,
        )
    finally:
        os.close(terminal)
    shown = b""
    try:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the script and its children closed the terminal
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
        proc.wait(timeout=30)

    assert proc.returncode == 0
    text = shown.decode().replace("\r\n", "\n")
    assert re.search(rf"{STAMP} feeds: stdout from feedgen build", text)
    assert "run: end result=ok exit=0" in text
    assert text == env.only_log()


# ---- the lock ----------------------------------------------------------------------------------------------


def test_a_second_run_for_the_same_config_is_skipped_while_the_first_runs(
    env: Env, finish: list[subprocess.Popen[str]]
) -> None:
    first = env.start(str(env.config), "feeds", STUB_FEEDGEN_BUILD_SLEEP="2")
    finish.append(first)
    env.wait_for_calls(1)  # the first run holds the lock and is inside its step

    started = time.monotonic()
    second = env.run(str(env.config), "all", RETARGET_LOCK_WAIT="0")
    took = time.monotonic() - started

    assert second.returncode == 0, second.stderr
    assert took < 1.5
    assert first.poll() is None  # the first is still running
    assert env.calls() == [feeds_call(env.config)]  # the second ran nothing
    [skipped] = [p for p in env.logs() if p.name.endswith("-all.log")]
    skipped_log = skipped.read_text()
    assert re.search(rf"{STAMP} run: another run holds the lock; skipped", skipped_log)
    assert "end result=skipped exit=0" in skipped_log

    _out, err = first.communicate(timeout=30)
    assert first.returncode == 0, err
    assert (env.config_dir / ".retarget.lock").exists()  # default: one lock per config, next to it


def test_a_second_run_waits_for_the_lock_with_lock_wait(
    env: Env, finish: list[subprocess.Popen[str]]
) -> None:
    first = env.start(str(env.config), "feeds", STUB_FEEDGEN_BUILD_SLEEP="2")
    finish.append(first)
    env.wait_for_calls(1)

    second = env.run(str(env.config), "feeds", RETARGET_LOCK_WAIT="5")

    assert second.returncode == 0, second.stderr
    # the second ran its step only after the first had finished
    assert first.poll() == 0
    assert env.calls() == [feeds_call(env.config), feeds_call(env.config)]
    logs = env.logs()
    assert len(logs) == 2  # two runs in the same second get two files, not one shared one
    texts = [p.read_text() for p in logs]
    waited = [t for t in texts if "waiting up to 5s for the lock" in t]
    assert len(waited) == 1
    assert "lock acquired" in waited[0]
    assert "end result=ok exit=0" in waited[0]


def test_runs_for_different_configs_do_not_block_each_other(
    env: Env, tmp_path: Path, finish: list[subprocess.Popen[str]]
) -> None:
    other_dir = tmp_path / "other-shop"
    other_dir.mkdir()
    other = other_dir / "retarget.yaml"
    other.write_text("shop: {name: Other}\n")
    first = env.start(str(env.config), "feeds", STUB_FEEDGEN_BUILD_SLEEP="2")
    finish.append(first)
    env.wait_for_calls(1)

    second = env.run(str(other), "feeds")

    assert second.returncode == 0, second.stderr
    assert first.poll() is None
    assert env.calls() == [feeds_call(env.config), feeds_call(other)]


def hold_lock(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_lock_file_from_the_environment_is_honoured(env: Env, tmp_path: Path) -> None:
    lock = tmp_path / "shared.lock"
    fd = hold_lock(lock)
    try:
        result = env.run(str(env.config), "feeds", RETARGET_LOCK=str(lock))
    finally:
        os.close(fd)

    assert result.returncode == 0, result.stderr
    assert env.calls() == []
    assert "another run holds the lock; skipped" in env.only_log()
    assert result.stderr == ""  # a skip is not a failure: nothing for cron to mail
    assert not (env.config_dir / ".retarget.lock").exists()


def test_lock_still_held_after_lock_wait_exits_75(env: Env) -> None:
    fd = hold_lock(env.config_dir / ".retarget.lock")
    try:
        started = time.monotonic()
        result = env.run(str(env.config), "all", RETARGET_LOCK_WAIT="1")
        took = time.monotonic() - started
    finally:
        os.close(fd)

    assert result.returncode == 75
    assert 0.9 < took < 10
    assert env.calls() == []
    assert "still holds the lock" in result.stderr  # on stderr, so cron mails it
    log = env.only_log()
    assert "another run still holds the lock after 1s; giving up (exit 75)" in log
    assert "end result=lock-timeout exit=75" in log


# ---- usage -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "CONFIG is missing"),
        (["{missing}"], "CONFIG is not a file"),
        (["{dir}"], "CONFIG is not a file"),
        (["{config}", "everything"], "unknown mode: everything"),
        (["{config}", "--as-of", "2026-11-20"], "unknown mode: --as-of"),
        (["{config}", "feeds", "--as-of", "2026-11-20"], "extra arguments only apply"),
    ],
)
def test_usage_errors_exit_2(env: Env, args: list[str], message: str) -> None:
    values = {"missing": env.config_dir / "nope.yaml", "dir": env.config_dir, "config": env.config}
    result = env.run(*(arg.format(**values) for arg in args))

    assert result.returncode == 2
    assert message in result.stderr
    assert "Usage: run.sh CONFIG [feeds|audiences|all] [ARGS...]" in result.stderr
    assert env.calls() == []
    assert env.logs() == []


def test_bad_lock_wait_is_a_usage_error(env: Env) -> None:
    result = env.run(str(env.config), "feeds", RETARGET_LOCK_WAIT="soon")

    assert result.returncode == 2
    assert "RETARGET_LOCK_WAIT must be a whole number" in result.stderr
    assert env.calls() == []


def test_help_prints_usage_with_pass_through_args_and_exit_codes(env: Env) -> None:
    result = env.run("--help")

    assert result.returncode == 0
    assert "ARGS after the mode are passed to 'audiences build'" in result.stdout
    assert "--as-of 2026-11-20" in result.stdout
    assert "RETARGET_LOCK_WAIT" in result.stdout
    assert "75" in result.stdout
