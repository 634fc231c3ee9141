"""Submitting Ray jobs through the Jobs API, and the shared shape of a job entrypoint."""

from raymlops.submission.client import entrypoint_for, submit, submit_and_follow, wait_for

__all__ = ["entrypoint_for", "submit", "submit_and_follow", "wait_for"]
