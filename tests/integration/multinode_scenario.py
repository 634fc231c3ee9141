"""Two Ray nodes on this machine (Ray's ``cluster_utils.Cluster``: a head and a worker node,
token auth on, every port on 127.0.0.1): train with one DDP worker per node, then serve
two model replicas, one per node, and answer HTTP through the head's proxy.

Run by tests/integration/test_multinode.py in its own process (a driver joins one cluster
at a time, and the test session already has one). Prints one JSON line of what it saw.
Needs RAYMLOPS_HOME, RAY_AUTH_MODE=token and RAY_AUTH_TOKEN in the environment, and
RAY_TMPDIR so the cluster's files (and its "current cluster" address file) stay its own.
"""

import json
import os
import socket
import sys
import time


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: every socket stays bound until all are chosen (one at a
    time, the OS may hand the same just-released port out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def main() -> dict:
    import httpx
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster
    from ray.util.state import list_actors

    from raymlops.cluster import ClusterAddresses
    from raymlops.config import PrepareConfig, ServeConfig, TrainConfig, load_config
    from raymlops.data import prepare_dataset
    from raymlops.serve.deploy import deploy
    from raymlops.train.run import run_training

    dashboard_port, serve_port, metrics_port, gcs_port, agent_port = free_ports(5)
    common = {"node_ip_address": "127.0.0.1", "num_cpus": 1, "object_store_memory": 200 * 1024 ** 2}
    cluster = Cluster(initialize_head=True, head_node_args={
        **common, "gcs_server_port": gcs_port, "include_dashboard": True, "dashboard_host": "127.0.0.1",
        "dashboard_port": dashboard_port, "metrics_export_port": metrics_port,
        "dashboard_agent_listen_port": agent_port})
    try:
        cluster.add_node(**common)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, namespace="raymlops", log_to_driver=False)
        nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
        data = prepare_dataset(PrepareConfig()).directory

        started = time.time()
        train_cfg = load_config(None, TrainConfig, [
            "model_name=multinode", f"data.path={data}", "train.epochs=2", "scaling.num_workers=2",
            "scaling.cpus_per_worker=0.5", "scaling.placement_strategy=STRICT_SPREAD", "gate.margin=-1.0"])
        outcome = run_training(train_cfg)
        workers = list_actors(filters=[("class_name", "=", "RayTrainWorker")], detail=True, limit=100,
                              address=f"http://127.0.0.1:{dashboard_port}")
        train_nodes = sorted({w.node_id for w in workers})
        train_s = time.time() - started

        serve.start(http_options={"host": "127.0.0.1", "port": serve_port}, proxy_location="HeadOnly")
        addresses = ClusterAddresses(dashboard=f"http://127.0.0.1:{dashboard_port}", gcs=cluster.address,
                                     serve_http=f"http://127.0.0.1:{serve_port}")
        serve_cfg = load_config(None, ServeConfig, [
            "model_name=multinode", "route_prefix=/", "replicas.min_replicas=2", "replicas.max_replicas=2",
            "replicas.max_replicas_per_node=1", "replicas.num_cpus=0.25"])
        deployed = deploy(serve_cfg, addresses)
        from ray.serve.context import _get_global_client

        app = _get_global_client().get_serve_details()["applications"]["multinode"]
        replicas = app["deployments"]["ModelServer"]["replicas"]
        replica_nodes = sorted({r["node_id"] for r in replicas if r["state"] == "RUNNING"})
        row = {"island": "Dream", "bill_length_mm": 40.0, "bill_depth_mm": 18.0, "flipper_length_mm": 190.0,
               "body_mass_g": 3500.0, "sex": "female"}
        statuses = [httpx.post(f"{deployed.url}/v1/models/multinode/predict", json={"instances": [row]},
                               timeout=30).status_code for _ in range(40)]
        return {"nodes": nodes, "train_nodes": train_nodes, "train_workers": len(workers),
                "version": outcome.version.version, "replica_nodes": replica_nodes, "replicas": len(replicas),
                "statuses": sorted(set(statuses)), "ok": statuses.count(200), "train_s": round(train_s, 1)}
    finally:
        try:
            serve.shutdown()
        except Exception:  # noqa: BLE001 - best effort before the nodes go away
            pass
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    for name in ("RAYMLOPS_HOME", "RAY_AUTH_TOKEN", "RAY_TMPDIR"):
        if not os.environ.get(name):
            sys.exit(f"{name} must be set")
    print("MULTINODE " + json.dumps(main()), flush=True)
