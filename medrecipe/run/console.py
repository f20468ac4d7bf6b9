"""A tool's run as the console shows it. Axolotl, OpenRLHF and lighteval print thousands of lines (warnings, per-step
dicts, progress bars redrawn with carriage returns): all of it goes to one log file per stage, and the console
gets one progress line (step, loss, tokens/s, ETA, read from what the tool prints), and on failure the log's last
lines and its path. `run --verbose` streams the tool's own output as well.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from ..recipe.untrusted import redact

# tqdm's bar, as Axolotl (the HF Trainer), OpenRLHF and lighteval draw it: " 12/30 [00:41<01:02, 2.1s/it]"
_BAR = re.compile(r"\b(\d+)/(\d+) \[([0-9:]+)<([0-9:?]+)")
# the bars around the run that are not its progress: datasets' map, filter and parquet writing (counted in examples/s
# and ba/s), loading and writing weights, tokenizing, lighteval's loop over splits around its generation bar
_HOUSEKEEPING = re.compile(r"examples/s|ba/s|^\s*(Loading|Writing|Saving|Fetching|Tokenizing|Dropping|Map|Filter|Creating|Splits)\b",
                           re.IGNORECASE)
# the Trainer's log dicts ({'loss': 1.23, ...}, quoted values in transformers 5) and OpenRLHF's "loss=1.23" postfix
_LOSS = re.compile(r"""['"]?\b(?:loss|policy_loss|train_loss)['"]?\s*[:=]\s*['"]?(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)""")
_TOKENS = re.compile(r"""(\d+(?:\.\d+)?)\s*tokens?/s\b|tokens_per_second['"]?\s*[:=]\s*['"]?(\d+(?:\.\d+)?)""")
# What a tool says it left out of training, shown at once (the run may be hours from its end): Axolotl's length
# filter, logged at INFO among thousands of lines (axolotl/utils/data/utils.py at 0.19.0, excess_length_strategy drop)
_DROPPED = re.compile(r"Dropped (\d+) sequences outside valid range \(\[[^\]]*?,\s*(\d+)\]\)")
_EVERY_S = 30.0  # without a terminal to redraw on, a progress line at most this often
_TAIL = 20  # log lines shown when the tool fails
_LINE_LIMIT = 1 << 20  # bytes of a line that never ends, taken as it is
_GRACE_S = 10.0  # how long an ended tool has to stop before it is killed


@dataclass
class Progress:
    """What the tool's output has said so far of its progress."""

    stage: str
    step: int | None = None
    total: int | None = None
    eta: str | None = None
    loss: float | None = None
    tokens_per_second: float | None = None
    notices: list[str] = field(default_factory=list)  # what the tool left out of training

    def read(self, line: str) -> bool:
        """Take what a line says; True when the progress changed."""
        if dropped := _DROPPED.search(line):
            count = int(dropped[1])
            self.notices.append(f"Axolotl left out {count:,} record{'s' if count != 1 else ''} longer than sft.sequence_len "
                                f"({int(dropped[2]):,} tokens): not trained")
        before = (self.step, self.total, self.loss, self.tokens_per_second)
        if (bar := _BAR.search(line)) and not _HOUSEKEEPING.search(line):
            self.step, self.total, self.eta = int(bar[1]), int(bar[2]), bar[4]
        if loss := _LOSS.search(line):
            self.loss = float(loss[1])
        if tokens := _TOKENS.search(line):
            self.tokens_per_second = float(tokens[1] or tokens[2])
        return (self.step, self.total, self.loss, self.tokens_per_second) != before

    def line(self) -> str:
        parts = []
        if self.step is not None and self.total:
            parts.append(f"step {self.step:,}/{self.total:,} ({self.step / self.total:.0%})")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4g}")
        if self.tokens_per_second is not None:
            parts.append(f"{self.tokens_per_second:,.0f} tokens/s")
        if self.eta and self.eta != "?" and self.step != self.total:
            parts.append(f"ETA {self.eta}")
        return f"{self.stage}: " + (" · ".join(parts) if parts else "running")


def run_logged(command: list[str], env: dict[str, str], cwd: Path | None, stage: str, log: Path,
               verbose: bool = False, keep_open: tuple[int, ...] = ()) -> tuple[int, list[str]]:
    """Run a tool with its output in `log`; the console shows the progress line, and at once what the tool says it
    left out of training. Returns the exit code and those notices.

    The output is taken a line at a time (up to a carriage return or a newline, or `_LINE_LIMIT` bytes of a line
    that never ends), and each line is scrubbed of secrets before it reaches the log or the terminal: a token the
    tool printed across two writes is whole by then. The tool runs in a session of its own, and the whole of it
    (`launch.sh` and the trainer it starts) ends with medrecipe: on Ctrl-C, on SIGTERM (scancel, kill), on SIGHUP (a
    closed terminal), on an error. `keep_open`: descriptors the tool holds too (the stage's lock, jobs.stage_lock)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    progress = Progress(stage)
    terminal = sys.stdout.isatty()
    click.echo(f"{stage}: running, the tool's log is {log}")
    shown, pending = time.monotonic(), b""
    with log.open("ab") as sink, _ended_by_signals():
        process = subprocess.Popen(command, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True, pass_fds=keep_open)
        try:
            assert process.stdout is not None
            for chunk in iter(lambda: process.stdout.read1(1 << 16), b""):
                lines, pending = _complete_lines(pending, chunk)
                if not lines:
                    continue
                text = redact(lines.decode("utf-8", "surrogateescape"))
                sink.write(text.encode("utf-8", "surrogateescape"))
                sink.flush()
                if verbose:
                    sys.stdout.write(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
                    sys.stdout.flush()
                noticed = len(progress.notices)
                changed = any([progress.read(line) for line in re.split(r"[\r\n]", text)])
                for notice in progress.notices[noticed:]:
                    click.echo(("\r\x1b[2K" if terminal else "") + f"{stage}: {notice}")
                if changed and not verbose and (terminal or time.monotonic() - shown >= _EVERY_S):
                    click.echo(("\r\x1b[2K" if terminal else "") + progress.line(), nl=not terminal)
                    shown = time.monotonic()
            code = process.wait()
        except BaseException:  # Ctrl-C, SIGTERM or an error here: the tool must not outlive medrecipe
            _end(process)
            raise
        rest = redact(pending.decode("utf-8", "surrogateescape"))
        sink.write(rest.encode("utf-8", "surrogateescape"))
    progress.read(rest)
    if terminal and not verbose:
        click.echo("\r\x1b[2K", nl=False)
    click.echo(progress.line() + (" · done" if code == 0 else f" · failed (exit code {code})"))
    if code != 0 and not verbose:
        click.echo(f"the last lines of {log}:", err=True)
        click.echo("\n".join(tail(log, _TAIL)), err=True)
    return code, progress.notices


def _complete_lines(pending: bytes, chunk: bytes) -> tuple[bytes, bytes]:
    """(the complete lines of what was pending plus `chunk`, what is left of a line not yet ended). Only `chunk` is
    searched for the last line break, and a line that grows past `_LINE_LIMIT` is taken as it is, so that output
    without line breaks costs neither quadratic time nor unbounded memory. (A character cut there is whole again in
    the log: both halves are decoded with surrogateescape and encoded back.)"""
    joined = pending + chunk
    end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
    cut = len(pending) + end + 1 if end >= 0 else (len(joined) if len(joined) >= _LINE_LIMIT else 0)
    return joined[:cut], joined[cut:]


def _end(process: subprocess.Popen) -> None:
    """End the tool's whole session: SIGTERM to what of it runs, then SIGKILL to what still runs after `_GRACE_S`."""
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        running = _running_in_session(process.pid)
        if not running:
            break
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal_number)
        deadline = time.monotonic() + _GRACE_S
        while time.monotonic() < deadline and _running_in_session(process.pid):
            process.poll()  # reap the leader
            time.sleep(0.05)
    process.wait()


def _running_in_session(session: int) -> list[int]:
    """What of a session still runs, as pids to signal: its processes, from /proc, where a zombie (ended, but not yet
    reaped by init, which takes what a killed shell leaves in its own time) does not count; where there is no /proc,
    its process group as a whole (-session), while the group has members."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(session, 0)
        except ProcessLookupError:
            return []
        return [-session]
    running = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            state, _, _, member_session = stat.read_text().rsplit(")", 1)[1].split()[:4]
        except (OSError, ValueError):
            continue  # ended meanwhile
        if int(member_session) == session and state != "Z":
            running.append(int(stat.parent.name))
    return running


@contextlib.contextmanager
def _ended_by_signals():
    """SIGTERM (scancel, kill) and SIGHUP (the terminal or the ssh connection closed) end medrecipe as Ctrl-C does,
    through the `except` that ends the tool, with exit code 128 + the signal; by default they would end medrecipe
    alone, and the tool, in a session of its own, would train on (found by review: after an ssh drop the trainer ran on
    under init, holding its GPUs and writing into the stage's folder, where a rerun starts another). A SIGHUP that is
    ignored (nohup) stays ignored. The handlers before are restored after; only the main thread may set them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(number, frame):
        raise SystemExit(128 + number)

    wanted = [signal.SIGTERM] + [signal.SIGHUP] * (signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN)
    previous = {number: signal.signal(number, terminated) for number in wanted}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def tail(log: Path, count: int) -> list[str]:
    """The last `count` lines of a log, progress-bar redraws split into their own lines and blank ones dropped."""
    with log.open("rb") as handle:
        handle.seek(max(0, log.stat().st_size - 64 * 1024))
        text = handle.read().decode("utf-8", "replace")
    lines = [line for line in re.split(r"[\r\n]", text) if line.strip()]
    return lines[-count:]
