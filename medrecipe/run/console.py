"""A tool's run as the console shows it. Axolotl, OpenRLHF and lighteval print thousands of lines (warnings, per-step
dicts, progress bars redrawn with carriage returns): all of it goes to one log file per stage, and the console
gets one progress line (step, loss, tokens/s, ETA, read from what the tool prints), and on failure the log's last
lines and its path. `run --verbose` streams the tool's own output as well.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

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
               verbose: bool = False) -> tuple[int, list[str]]:
    """Run a tool with its output in `log`; the console shows the progress line, and at once what the tool says it
    left out of training. Returns the exit code and those notices."""
    log.parent.mkdir(parents=True, exist_ok=True)
    progress = Progress(stage)
    terminal = sys.stdout.isatty()
    click.echo(f"{stage}: running, the tool's log is {log}")
    shown, pending = time.monotonic(), b""
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert process.stdout is not None
            for chunk in iter(lambda: process.stdout.read1(1 << 16), b""):
                sink.write(chunk)
                sink.flush()
                if verbose:  # as text through sys.stdout, which medrecipe's CLI redacts
                    sys.stdout.write(chunk.decode("utf-8", "replace"))
                    sys.stdout.flush()
                *lines, pending = re.split(rb"[\r\n]", pending + chunk)
                noticed = len(progress.notices)
                changed = any([progress.read(line.decode("utf-8", "replace")) for line in lines])
                for notice in progress.notices[noticed:]:
                    click.echo(("\r\x1b[2K" if terminal else "") + f"{stage}: {notice}")
                if changed and not verbose and (terminal or time.monotonic() - shown >= _EVERY_S):
                    click.echo(("\r\x1b[2K" if terminal else "") + progress.line(), nl=not terminal)
                    shown = time.monotonic()
            code = process.wait()
        except BaseException:  # Ctrl-C or an error here: the tool must not outlive medrecipe
            process.terminate()
            process.wait()
            raise
    progress.read(pending.decode("utf-8", "replace"))
    if terminal and not verbose:
        click.echo("\r\x1b[2K", nl=False)
    click.echo(progress.line() + (" · done" if code == 0 else f" · failed (exit code {code})"))
    if code != 0 and not verbose:
        click.echo(f"the last lines of {log}:", err=True)
        click.echo("\n".join(tail(log, _TAIL)), err=True)
    return code, progress.notices


def tail(log: Path, count: int) -> list[str]:
    """The last `count` lines of a log, progress-bar redraws split into their own lines and blank ones dropped."""
    with log.open("rb") as handle:
        handle.seek(max(0, log.stat().st_size - 64 * 1024))
        text = handle.read().decode("utf-8", "replace")
    lines = [line for line in re.split(r"[\r\n]", text) if line.strip()]
    return lines[-count:]
