"""A tool's run on the console: its output in the stage's log, one progress line read from it, the log's tail on
failure. The tool here is a Python process printing what Axolotl's Trainer prints (its log dicts and tqdm's bar,
redrawn with carriage returns); the real Axolotl run is in test_sft_smoke.py."""

from __future__ import annotations

import sys

from medrecipe.run.console import Progress, run_logged

from .conftest import stat_fields

TOOL = r"""
import sys, time
print("[axolotl.cli.train] loading the model; warnings follow", flush=True)
for step in range(1, 5):
    sys.stdout.write(f"\r {step * 25}%|##| {step}/4 [00:0{step}<00:0{4 - step},  1.00s/it]")
    sys.stdout.flush()
    print(f"\n{{'loss': '{2.0 / step:.4f}', 'learning_rate': '1e-05', 'epoch': '{step / 4}'}}", flush=True)
print("Writing model shards: 100%|##| 1/1 [00:00<00:00,  3.11it/s]")
print("{'train_runtime': 4.0, 'train_tokens_per_second': 812.5}")
sys.exit(int(sys.argv[1]))
"""


def test_the_console_shows_progress_and_the_log_keeps_the_tool_output(tmp_path, capsys):
    log = tmp_path / "sft.log"
    assert run_logged([sys.executable, "-c", TOOL, "0"], {}, None, "sft", log) == (0, [])
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"sft: running, the tool's log is {log}", "sft: step 4/4 (100%) · loss 0.5 · 812 tokens/s · done"]
    assert err == ""
    text = log.read_bytes()
    assert b"[axolotl.cli.train]" in text and b"'loss': '0.5000'" in text and b"\r" in text  # the tool's bytes, whole


def test_a_failed_tool_shows_the_logs_last_lines(tmp_path, capsys):
    log = tmp_path / "rl.log"
    assert run_logged([sys.executable, "-c", TOOL, "3"], {}, None, "rl", log)[0] == 3
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "rl: step 4/4 (100%) · loss 0.5 · 812 tokens/s · failed (exit code 3)"
    assert err.startswith(f"the last lines of {log}:\n") and "train_tokens_per_second" in err


def test_records_axolotl_leaves_out_are_shown_at_once_and_noted(tmp_path, capsys):
    """Axolotl drops the records longer than sequence_len and says so once, at INFO, among thousands of lines
    (axolotl/utils/data/utils.py at 0.19.0; the review measured 30 of the quickstart's 186 records, most of its
    Chinese source)."""
    tool = ("import sys\nprint('[2026-11-30 10:41:02,118] [INFO] [axolotl.utils.data.utils._log_dataset_stats:241] "
            "[PID:12] max_input_len: 2210', flush=True)\nprint('[2026-11-30 10:41:02,530] [INFO] "
            "[axolotl.utils.data.utils._drop_long_sequences:305] [PID:12] Dropped 30 sequences outside valid range "
            "([None, 512])', flush=True)\n" + TOOL.split("\n", 2)[2])
    code, notices = run_logged([sys.executable, "-c", tool, "0"], {}, None, "sft", tmp_path / "sft.log")
    assert code == 0
    assert notices == ["Axolotl left out 30 records longer than sft.sequence_len (512 tokens): not trained"]
    assert f"sft: {notices[0]}" in capsys.readouterr().out.splitlines()


def test_progress_reads_openrlhf_and_the_trainer():
    progress = Progress("rl")
    progress.read("Episode [1/1]:  50%|#####     | 2/4 [01:02<01:02, policy_loss=0.031, reward=0.5]")
    assert progress.line() == "rl: step 2/4 (50%) · loss 0.031 · ETA 01:02"
    progress.read("Map (num_proc=2): 100%|##| 272/272 [00:00<00:00, 1234.56 examples/s]")  # datasets' bar: not the run's
    assert progress.step == 2 and progress.total == 4
    # lighteval: its generation bar is the progress; the splits loop around it and the parquet writing after are not
    evaluation = Progress("eval")
    for line in ("Greedy generation: 100%|##| 8/8 [02:09<00:00, 15.73s/it]", "Splits: 100%|##| 1/1 [02:09<00:00, 129.82s/it]",
                 "Creating parquet from Arrow format: 100%|##| 1/1 [00:00<00:00, 680.67ba/s]"):
        evaluation.read(line)
    assert evaluation.line() == "eval: step 8/8 (100%)"


def test_a_secret_printed_across_two_writes_is_scrubbed_in_the_log_and_on_the_terminal(tmp_path, capsys, monkeypatch):
    """The output is scrubbed a whole line at a time: a block-buffered tool can split a token between two reads,
    and each half passed (review: `token=hf_AAA...` reached `--verbose`'s terminal and every stage log)."""
    token = "hf_" + "A" * 34
    monkeypatch.setenv("HF_TOKEN", token)
    tool = f"import sys, time\nsys.stdout.write('token={token[:10]}'); sys.stdout.flush(); time.sleep(0.3)\nprint('{token[10:]} used')"
    log = tmp_path / "sft.log"
    assert run_logged([sys.executable, "-c", tool], {}, None, "sft", log, verbose=True)[0] == 0
    out, _ = capsys.readouterr()
    assert "token=[redacted] used" in out and "token=[redacted] used" in log.read_text()
    assert token[:10] not in out + log.read_text() and token[10:] not in out + log.read_text()


def test_a_line_that_never_ends_is_taken_in_bounded_pieces():
    """Output without line breaks is handed on once it passes the limit, not searched again on every read (review:
    16 MB of dots took 12.8 s, and memory grew without bound); what comes out is what went in."""
    from medrecipe.run.console import _LINE_LIMIT, _complete_lines

    pending, taken, largest = b"", [], 0
    chunks = [b"." * 65536] * 40 + [b"..\rstep 3/4 [00:01<00:01]\ntail"]
    for chunk in chunks:
        lines, pending = _complete_lines(pending, chunk)
        taken.append(lines)
        largest = max(largest, len(pending))
    assert largest < _LINE_LIMIT and b"".join(taken) + pending == b"".join(chunks)
    assert taken[-1].endswith(b"[00:01<00:01]\n") and pending == b"tail"


def test_the_tool_and_what_it_started_end_with_medrecipe(tmp_path):
    """The tool runs in a session of its own, ended as a whole on SIGTERM (scancel, kill), on SIGHUP (an ssh connection
    dropped) and on Ctrl-C: `launch.sh` and the trainer it starts (review: the trainer was left running under init)."""
    import signal
    import subprocess
    import time

    pid_file = tmp_path / "trainer.pid"
    launch = f"sleep 60 & echo $! > {pid_file}; wait"
    # Ctrl-C as a terminal delivers it: Python ignores SIGINT where its parent did (a CI job started in the background)
    script = ("import signal\nfrom pathlib import Path\nfrom medrecipe.run.console import run_logged\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              f"run_logged(['bash', '-c', {launch!r}], {{}}, None, 'rl', Path({str(tmp_path / 'rl.log')!r}))")
    for signal_number, code in ((signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, -signal.SIGINT)):
        pid_file.unlink(missing_ok=True)
        medrecipe = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not pid_file.exists() or not pid_file.read_text().strip():
            time.sleep(0.05)
        trainer = int(pid_file.read_text())
        medrecipe.send_signal(signal_number)
        assert medrecipe.wait(timeout=30) == code
        for _ in range(100):  # the trainer ends (a zombie until init reaps it, in its own time)
            try:
                if stat_fields(trainer)[0] == "Z":
                    break
            except FileNotFoundError:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"the trainer outlived medrecipe after signal {signal_number}")


def test_under_nohup_a_hangup_leaves_the_tool_running(tmp_path):
    """nohup (SIGHUP ignored) is how a user asks a run to outlive the terminal: medrecipe keeps it so."""
    import signal
    import subprocess
    import time

    started = tmp_path / "started"
    script = ("from pathlib import Path\nfrom medrecipe.run.console import run_logged\n"
              f"run_logged(['bash', '-c', 'touch {started}; sleep 1'], {{}}, None, 'rl', Path({str(tmp_path / 'rl.log')!r}))")
    medrecipe = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    while not started.exists():
        time.sleep(0.05)
    medrecipe.send_signal(signal.SIGHUP)
    assert medrecipe.wait(timeout=30) == 0
