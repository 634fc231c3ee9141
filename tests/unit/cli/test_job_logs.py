"""How a job's log reaches the caller: read whole while the job is young, then Ray's log tail from
where the reading stopped — every character shown once, in order, partial lines held back."""

import pytest

from raymlops.submission.client import wait_for


class FakeJobs:
    """A job whose log grows by one piece per status call, and ends after the last piece."""

    def __init__(self, pieces):
        self.pieces, self.calls, self.tailed = pieces, 0, False

    def _written(self):
        return "".join(self.pieces[:self.calls])

    def get_job_status(self, job_id):
        self.calls = min(self.calls + 1, len(self.pieces) + 1)
        return "JobStatus.SUCCEEDED" if self.calls > len(self.pieces) else "JobStatus.RUNNING"

    def get_job_logs(self, job_id):
        return self._written()

    async def tail_job_logs(self, job_id):
        self.tailed = True
        full = "".join(self.pieces)
        for start in range(0, len(full), 7):  # chunks that cut lines anywhere
            yield full[start:start + 7]


PIECES = ["starting\npart", "ial line\n", "[raymlops:exit] 0\n", "late line\n"]


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr("raymlops.submission.client.time.sleep", lambda s: None)


def test_a_short_job_is_read_whole_each_character_once_and_partial_lines_wait():
    jobs, shown = FakeJobs(PIECES), []
    assert wait_for("j", jobs, shown.append) == "SUCCEEDED"
    assert "".join(shown) == "".join(PIECES) and not jobs.tailed
    assert all(piece.endswith("\n") for piece in shown)  # "part" waited for the rest of its line


def test_until_returns_once_the_log_said_enough_while_the_job_still_runs():
    jobs, shown = FakeJobs(PIECES), []
    status = wait_for("j", jobs, shown.append, until=lambda: "[raymlops:exit]" in "".join(shown))
    assert status == "RUNNING" and "".join(shown) == "".join(PIECES[:3])


def test_a_long_job_goes_on_with_the_tail_from_where_the_reading_stopped(monkeypatch):
    clock = iter([0.0, 0.0, 0.0, 0.1, 0.2, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0])
    monkeypatch.setattr("raymlops.submission.client.time.time", lambda: next(clock, 100.0))
    jobs, shown = FakeJobs(PIECES), []
    assert wait_for("j", jobs, shown.append, read_whole_s=0.15) == "SUCCEEDED"
    assert jobs.tailed and "".join(shown) == "".join(PIECES)
