"""Ray Jobs: submitting entrypoints through the Jobs API, and the shared job entrypoint."""

from raymlops.jobs.client import submit, submit_and_follow, wait_for

__all__ = ["submit", "submit_and_follow", "wait_for"]
