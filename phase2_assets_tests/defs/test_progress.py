"""Long steps report their progress in the run log, a line per tenth of the work at most."""

from __future__ import annotations

import io
import re

import dagster as dg

from phase2_assets.defs.steps.progress import log_progress, terminal_bar
from phase2_assets.testing import graph as gh


class _Log:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


class _Context:
    def __init__(self):
        self.log = _Log()


def test_the_first_block_a_line_per_tenth_and_always_the_last():
    context, now = _Context(), [0.0]
    report = log_progress(context, "search", "queries", clock=lambda: now[0])
    for done in range(1, 1001):  # 1,000 blocks
        now[0] += 0.01
        report(done, 1000)
    assert len(context.log.lines) == 11  # the first block (a rate early), then 10%, ... 100%
    assert context.log.lines[0] == "search: 1/1,000 queries (0%, 100 queries/s)"
    assert context.log.lines[-1].startswith("search: 1,000/1,000 queries (100%")


def test_a_slow_step_still_reports_every_minute_and_a_new_phase_counts_afresh():
    context, now = _Context(), [0.0]
    report = log_progress(context, "build", clock=lambda: now[0], every_seconds=60)
    for done in range(1, 6):  # 5 blocks of 100,000, 61 s each: within the first tenth
        now[0] += 61
        report(done, 1_000_000)
    assert len(context.log.lines) == 5
    report(10, 10)  # then a search of 10 queries: a new phase
    report(1, 10)
    assert context.log.lines[-1].startswith("build: 1/10 rows (10%")


def test_the_run_log_shows_progress_of_encoding_search_and_quantisation(tiny_study, tmp_path):
    _, defs = gh.build(tiny_study, tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert gh.materialize(defs, "dataset", "tiny", instance).success
    result = gh.materialize(defs, "pair", "tiny__tiny-bert", instance)
    assert result.success
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    text = "\n".join(messages)
    assert re.search(r"corpus_embeddings \[tiny__tiny-bert\]: (\d+)/\1 texts \(100%", text)
    assert re.search(r"exact search \[tiny__tiny-bert\]: (\d+)/\1 vectors \(100%", text)
    assert re.search(r"int8 \[tiny__tiny-bert\] encoding the corpus: (\d+)/\1 rows \(100%", text)
    assert re.search(r"int8 search \[tiny__tiny-bert\]: (\d+)/\1 rows \(100%", text)


def test_the_terminal_bar_shows_rate_and_time_left_and_nothing_without_a_terminal():
    class Closed(io.StringIO):
        def close(self):  # keep the text readable after the bar closes its stream
            self.closed_by_bar = True

    screen = Closed()
    report = terminal_bar("corpus_embeddings [x]", open_terminal=lambda: screen)
    for done in (64, 128, 200):
        report(done, 200)
    text = screen.getvalue()
    assert "corpus_embeddings [x]" in text and "200/200" in text and "100%" in text
    assert "texts/s" in text and screen.closed_by_bar
    silent = terminal_bar("x", open_terminal=lambda: None)
    silent(1, 2)  # no terminal: nothing to draw, no error


def test_the_bar_is_drawn_only_when_someone_is_watching(monkeypatch):
    from phase2_assets.defs.steps import progress

    monkeypatch.setenv(progress.PROGRESS_BAR_ENV, "0")
    assert progress._terminal() is None
    monkeypatch.delenv(progress.PROGRESS_BAR_ENV)
    monkeypatch.setattr("sys.stderr", io.StringIO())  # pytest's capture: not a terminal
    assert progress._terminal() is None
