"""Progressive rollouts: the pure policy, the evidence it judges, and the controller actor that applies it."""

from raymlops.rollout.policy import Decision, Evidence, Plan, RolloutState, decide

__all__ = ["Decision", "Evidence", "Plan", "RolloutState", "decide"]
