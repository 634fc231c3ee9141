"""Ray Jobs: submitting entrypoints through the Jobs API, and the shared job entrypoint."""

from raymlops.jobs.client import entrypoint_for, submit, submit_and_follow, wait_for

__all__ = ["entrypoint_for", "submit", "submit_and_follow", "wait_for"]
