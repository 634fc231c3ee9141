"""What the model server shows: no storage paths, status answers kept briefly."""

import asyncio

import pytest

from raymlops.serve.exposure import TimedCache, redact


def test_status_bodies_leave_storage_locations_out():
    status = {"model": "m", "prediction_log": "s3://bucket/_predictions",
              "last_error": "snapshot refused: s3://bucket/_monitor/m/snapshot.json: changed",
              "versions": {"1": {"online": "failed: /home/u/.raymlops/artifacts/_monitor/m/v1/online.sealed: x",
                                 "budget": "1/20000", "accuracy": 0.9}}}
    shown = redact(status)
    assert "prediction_log" not in shown
    assert shown["last_error"] == "snapshot refused: <storage>: changed"
    assert shown["versions"]["1"] == {"online": "failed: <storage>: x", "budget": "1/20000", "accuracy": 0.9}


def test_answers_are_kept_for_their_time_and_shared_by_concurrent_callers():
    now = [0.0]
    cache = TimedCache(1.0, clock=lambda: now[0])
    calls = []

    async def fetch():
        calls.append(1)
        await asyncio.sleep(0.01)
        return len(calls)

    async def scenario():
        first = await asyncio.gather(*[cache.get("k", fetch) for _ in range(5)])
        now[0] = 0.5
        kept = await cache.get("k", fetch)
        now[0] = 1.5
        fresh = await cache.get("k", fetch)
        return first, kept, fresh

    first, kept, fresh = asyncio.run(scenario())
    assert first == [1] * 5 and kept == 1 and fresh == 2 and len(calls) == 2


def test_errors_are_not_kept():
    cache = TimedCache(10.0)

    async def failing():
        raise RuntimeError("monitor down")

    async def ok():
        return "up"

    async def scenario():
        with pytest.raises(RuntimeError):
            await cache.get("k", failing)
        return await cache.get("k", ok)

    assert asyncio.run(scenario()) == "up"


def test_every_route_that_reads_a_body_declares_it_in_the_openapi_schema():
    from raymlops.serve.server import api

    spec = api.openapi()
    declared = {path for path, ops in spec["paths"].items() for method, op in ops.items()
                if method in ("post", "put") and "requestBody" in op}
    assert declared == {"/v1/models/{name}/predict", "/v1/models/{name}/feedback", "/admin/models/{name}/traffic",
                        "/admin/models/{name}/rollout/{action}", "/v2/models/{name}/infer",
                        "/v2/models/{name}/versions/{version}/infer"}
    assert "/docs" not in spec["paths"] and "/v2/health/ready" in spec["paths"]
