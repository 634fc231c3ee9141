"""Commands that need the registry or the cluster's actors run on the cluster, as a Ray job.

A client knows only the cluster's addresses and tokens (``--profile``, or ``RAY_ADDRESS``,
``RAYMLOPS_SERVE_URL``, ``RAY_AUTH_TOKEN``, ``RAYMLOPS_ADMIN_TOKEN``); it never opens the registry
itself. A command marked :func:`cluster_side` re-runs its own command line on the cluster with
``python -m raymlops.jobs.command`` (uploading the project directory when the command reads
files), streams the job's output back — stderr lines to stderr — and exits with the command's
exit code. Inside that job (``RAYMLOPS_ON_CLUSTER=1``) the command runs where it is.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable, Sequence, TypeVar

F = TypeVar("F", bound=Callable[..., object])

ON_CLUSTER_ENV = "RAYMLOPS_ON_CLUSTER"
BEGIN_MARK = "[raymlops:begin]"
STDERR_MARK = "[raymlops:stderr] "
EXIT_MARK = "[raymlops:exit] "
#: A line a command prints for its client to keep (not to show), e.g. a pipeline's JSON summary.
SUMMARY_MARK = "[raymlops:summary] "
COMMAND_JOB = "raymlops.jobs.command"

_invocation: list[str] | None = None


def remember_invocation(argv: Sequence[str]) -> None:
    """Keep the command line (without ``--profile``) to re-run it on the cluster."""
    global _invocation
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--profile":
            skip = True
        elif not arg.startswith("--profile="):
            args.append(arg)
    _invocation = args


def remembered_invocation() -> list[str] | None:
    """The command line :func:`remember_invocation` kept (None when called in-process)."""
    return _invocation


def on_cluster() -> bool:
    """Whether this process runs on the cluster for a client (inside the command job)."""
    return os.environ.get(ON_CLUSTER_ENV) == "1"


def cluster_side(upload: bool, after: Callable[[list[str]], None] | None = None) -> Callable[[F], F]:
    """Mark a command that runs on the cluster. ``upload``: the command reads files of the project
    (configs, a model directory), so the working directory is uploaded with the job. ``after`` runs
    here once the job succeeded (e.g. to print URLs as this machine reaches them)."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if on_cluster() or _invocation is None:  # on the cluster, or called in-process (tests, scripts)
                return func(*args, **kwargs)
            code = run_on_cluster(_invocation, upload, code_args(_invocation))
            if code == 0 and after is not None:
                after(_invocation)
            sys.exit(code)

        return wrapper  # type: ignore[return-value]

    return decorate


class Demux:
    """Split a job's streamed log into this process's stdout and stderr, and catch the exit code.
    What Ray writes before the command starts (runtime env set-up) is dropped, or shown on stderr
    when the command never started."""

    def __init__(self) -> None:
        self.pending = ""
        self.exit_code: int | None = None
        self.begun = False
        self.preamble: list[str] = []
        self.summary: str | None = None

    def feed(self, text: str) -> None:
        """Take a chunk of the log (lines may be split across chunks)."""
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self._line(line)

    def close(self) -> None:
        """Flush a last line without a newline."""
        if self.pending:
            self._line(self.pending)
            self.pending = ""
        if not self.begun and self.preamble:
            sys.stderr.write("\n".join(self.preamble) + "\n")

    def _line(self, line: str) -> None:
        if not self.begun:
            if line.startswith(BEGIN_MARK):
                self.begun = True
            else:
                self.preamble.append(line)
        elif line.startswith(EXIT_MARK):
            self.exit_code = int(line[len(EXIT_MARK):].strip() or 1)
        elif line.startswith(SUMMARY_MARK):
            self.summary = line[len(SUMMARY_MARK):]
        elif line.startswith(STDERR_MARK):
            sys.stderr.write(line[len(STDERR_MARK):] + "\n")
            sys.stderr.flush()
        else:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


def code_args(argv: Sequence[str]) -> list[str]:
    """The ``--code PATH`` values of a command line (your modules the command imports)."""
    found = []
    for flag, value in zip(argv, [*argv[1:], ""]):
        if flag == "--code":
            found.append(value)
        elif flag.startswith("--code="):
            found.append(flag.split("=", 1)[1])
    return found


def run_on_cluster(argv: Sequence[str], upload: bool, code: Sequence[str] = (), demux: Demux | None = None) -> int:
    """Run ``raymlops ARGV`` on the cluster as a Ray job, with ``code`` (module files or package
    directories) on its import path; returns its exit code (``demux``: to read what it kept)."""
    from raymlops.errors import RaymlopsError
    from raymlops.submission import submit, wait_for
    from raymlops.submission.client import code_paths, job_client, project_working_dir

    try:
        client = job_client()
        job_id = submit(["python", "-m", COMMAND_JOB, *argv], project_working_dir() if upload else None, client,
                        py_modules=code_paths(code))
        demux = demux or Demux()
        status = wait_for(job_id, client, demux.feed, until=lambda: demux.exit_code is not None)
        demux.close()
    except RaymlopsError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if demux.exit_code is not None:
        return demux.exit_code
    if status != "SUCCEEDED":
        sys.stderr.write(f"error: the command's job {job_id} ended {status}; see `ray job logs {job_id}`\n")
        return 1
    return 0
