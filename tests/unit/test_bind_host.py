"""Serve's wildcard gRPC listeners are bound to the cluster's host in every worker."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from raymlops import bind_host


@pytest.mark.parametrize("address, bound", [
    ("[::]:0", "127.0.0.1:0"), ("0.0.0.0:9000", "127.0.0.1:9000"), (":9000", "127.0.0.1:9000"),
    ("10.0.0.5:9000", "10.0.0.5:9000"), ("unix:/tmp/x.sock", "unix:/tmp/x.sock"),
])
def test_only_wildcard_addresses_change(address, bound):
    assert bind_host.bound_address(address, "127.0.0.1") == bound


def test_an_ipv6_host_is_bracketed():
    assert bind_host.bound_address("[::]:9000", "::1") == "[::1]:9000"


def test_a_wildcard_cluster_host_sets_nothing():
    assert bind_host.environment("0.0.0.0") == {}
    assert bind_host.environment("127.0.0.1") == {bind_host.HOST_ENV: "127.0.0.1",
                                                  bind_host.SETUP_HOOK_ENV: bind_host.HOOK}


def _listening_addresses(port: int) -> set[str]:
    """The addresses this process listens on at ``port`` (IPv4-mapped ones as IPv4)."""
    import os

    import psutil

    return {c.laddr.ip.removeprefix("::ffff:") for c in psutil.Process(os.getpid()).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


def test_the_hook_binds_a_wildcard_grpc_server_to_the_host(monkeypatch):
    from grpc.aio._server import Server

    monkeypatch.setattr(Server, "add_insecure_port", Server.add_insecure_port)  # undone after the test
    monkeypatch.setattr(Server, "add_secure_port", Server.add_secure_port)
    monkeypatch.setenv(bind_host.HOST_ENV, "127.0.0.1")
    bind_host.bind_to_host()
    bind_host.bind_to_host()  # twice is once

    async def scenario() -> set[str]:
        server = grpc.aio.server()
        port = server.add_insecure_port("[::]:0")
        await server.start()
        try:
            return _listening_addresses(port)
        finally:
            await server.stop(None)

    assert asyncio.run(scenario()) == {"127.0.0.1"}
