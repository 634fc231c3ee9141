"""Serving: traffic policy and routing (pure), model deployments and the router on Ray Serve."""

from raymlops.serve.split import Route, TrafficPolicy, key_point, route

__all__ = ["Route", "TrafficPolicy", "key_point", "route"]
