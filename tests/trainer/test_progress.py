"""The command line's progress bar: rate and ETA, redrawn on a terminal, tenths in a log."""

import io

from trainer import progress
from trainer.progress import ProgressBar, StageBars


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_rate_and_eta(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    bar = ProgressBar("embedding", stream=io.StringIO())
    assert bar.line(10, 1000) == "embedding   1.0% [........................] 10/1,000 files"
    now[0] += 10.0
    line = bar.line(250, 1000)
    assert line.endswith("250/1,000 files  25.0/s  ETA 0:00:30") and "[######.." in line
    assert ProgressBar("w", unit="bytes").line(0, 2_500_000_000).endswith("0 B/2.5 GB bytes")


def test_a_log_gets_a_line_per_tenth_and_a_terminal_one_redrawn_line():
    log = io.StringIO()
    bar = ProgressBar("reading GPS", stream=log)
    for done in range(0, 101):
        bar(done, 100)
    assert len(log.getvalue().splitlines()) == 11
    term = Terminal()
    bars = StageBars(stream=term, units={"predicting": "sampler steps"})
    bars("embedding", 5, 5)
    bars("predicting", 1, 2)
    bars.close()
    text = term.getvalue()
    assert text.count("\n") == 2 and "\rembedding 100.0%" in text and "1/2 sampler steps" in text
