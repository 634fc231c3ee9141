"""Run one raymlops CLI command on the cluster: ``python -m raymlops.jobs.command ARGS...``.

What ``raymlops`` submits for a command that needs the registry or the cluster's actors when the
client reaches the cluster only by its addresses (see :mod:`raymlops.cli.remote`): stderr lines
are marked so the client can split them from stdout, and the last line carries the exit code.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from typing import Sequence

from raymlops.cli.remote import BEGIN_MARK, EXIT_MARK, ON_CLUSTER_ENV, STDERR_MARK


class MarkedStream(io.TextIOBase):
    """A text stream that prefixes every line it writes with ``mark``."""

    def __init__(self, target, mark: str) -> None:
        self.target, self.mark, self.at_line_start = target, mark, True

    encoding = "utf-8"

    def writable(self) -> bool:
        """A text stream one writes to."""
        return True

    def write(self, text) -> int:
        """Write ``text`` (bytes are decoded), marking the start of each line."""
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        out = []
        for piece in text.splitlines(keepends=True):
            out.append((self.mark if self.at_line_start else "") + piece)
            self.at_line_start = piece.endswith("\n")
        self.target.write("".join(out))
        return len(text)

    def flush(self) -> None:
        """Flush the target."""
        self.target.flush()


def locate_dashboard() -> None:
    """Inside a job ``RAY_ADDRESS`` is the GCS; when the cluster was not started by ``raymlops up``
    with this home (which records its addresses), ask Ray where its dashboard is."""
    from raymlops.cluster import read_state

    state, address = read_state(), os.environ.get("RAY_ADDRESS", "")
    if os.environ.get("RAY_API_SERVER_ADDRESS") or (state and address in (state.addresses.gcs,
                                                                          state.addresses.dashboard)):
        return
    import ray

    from raymlops.actors import NAMESPACE

    context = ray.init(namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING)
    if context.dashboard_url:
        url = context.dashboard_url
        os.environ["RAY_API_SERVER_ADDRESS"] = url if "://" in url else f"http://{url}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; print its exit code as the last line; returns it."""
    os.environ[ON_CLUSTER_ENV] = "1"
    print(BEGIN_MARK, flush=True)
    sys.stderr = MarkedStream(sys.__stderr__, STDERR_MARK)
    code = 0
    try:
        locate_dashboard()
        from raymlops.cli import app

        app(args=list(argv if argv is not None else sys.argv[1:]), prog_name="raymlops")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    print(f"{EXIT_MARK}{code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
