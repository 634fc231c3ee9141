"""`raymlops up | status | down` against real Ray, and the plain `ray job submit` CLI after `up`."""

import httpx
import psutil

from raymlops.local_head import select_cluster_processes


def write_local_config(path, base, serve):
    path.write_text(
        f"gcs_port: {base + 379}\ndashboard_port: {base + 265}\nserve_http_port: {base + 100}\n"
        f"metrics_export_port: {base + 90}\nclient_server_port: {base + 1}\ndashboard_agent_port: {base + 365}\n"
        f"haproxy_stats_port: {base + 404}\nhaproxy_metrics_port: {base + 101}\n"
        f"temp_dir: /tmp/rmo-it-{base}\nstart_serve: {'true' if serve else 'false'}\nnum_cpus: 2\n"
    )
    return path


def answers(url):
    try:
        httpx.get(url, timeout=2)
        return True
    except httpx.HTTPError:
        return False


def test_up_submit_status_down(tmp_path, cli_env, run_cli):
    bystander_env, env = cli_env("bystander"), cli_env("ours")
    bystander_cfg = write_local_config(tmp_path / "bystander.yaml", 23000, serve=False)
    cfg = write_local_config(tmp_path / "local.yaml", 21000, serve=True)
    work = tmp_path / "work"
    work.mkdir()
    (work / "hello.py").write_text("import ray\nray.init()\nprint('nodes', len(ray.nodes()))\n")

    started = run_cli(f"raymlops up --config {bystander_cfg}", bystander_env)
    assert started.returncode == 0, started.stderr
    try:
        first = run_cli(f"raymlops up --config {cfg}", env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert first.stdout.startswith("started")
        state_before = (tmp_path / "ours" / "home" / "cluster.json").read_text()

        again = run_cli(f"raymlops up --config {cfg}", env)
        assert again.returncode == 0 and "already running" in again.stdout
        assert (tmp_path / "ours" / "home" / "cluster.json").read_text() == state_before

        # Auth is on: the bare Ray CLI without the token settings is refused ...
        bare = run_cli("ray job submit --address http://127.0.0.1:21265 -- python -c 'print(1)'", env, cwd=work)
        assert bare.returncode != 0 and "Missing authentication token" in bare.stdout + bare.stderr
        # ... and after `eval "$(raymlops env)"` the README's command works as shown.
        submit = run_cli(
            'eval "$(raymlops env)" && ray job submit --address http://127.0.0.1:21265 --working-dir . -- python hello.py',
            env, cwd=work,
        )
        assert submit.returncode == 0, submit.stdout[-2000:] + submit.stderr[-2000:]
        assert "nodes 1" in submit.stdout and "succeeded" in submit.stdout
        # Every Ray CLI command, with no address of its own: `ray status` (GCS) and `ray job` (dashboard).
        plain = run_cli('eval "$(raymlops env)" && ray status && ray job list', env, cwd=work)
        assert plain.returncode == 0, plain.stdout[-2000:] + plain.stderr[-2000:]
        assert "Node status" in plain.stdout and "hello.py" in plain.stdout

        status = run_cli("raymlops status", env)
        assert status.returncode == 0, status.stderr
        assert "nodes: 1   CPUs: 2" in status.stdout
        assert "http://127.0.0.1:21265" in status.stdout and "http://127.0.0.1:21090/metrics" in status.stdout
        assert "Serve applications: none" in status.stdout
        assert answers("http://127.0.0.1:21100/-/routes"), "Serve's proxy is not on its port"
        metrics = httpx.get("http://127.0.0.1:21090/metrics", timeout=5)
        assert metrics.status_code == 200

        down = run_cli("raymlops down", env)
        assert down.returncode == 0 and down.stdout.startswith("stopped"), down.stdout + down.stderr
        assert select_cluster_processes(psutil.process_iter(), "/tmp/rmo-it-21000", "127.0.0.1:21379") == []
        assert not answers("http://127.0.0.1:21265/api/version")
        # Only our cluster stopped.
        assert answers("http://127.0.0.1:23265/api/version")
        assert "nothing to stop" in run_cli("raymlops down", env).stdout
    finally:
        run_cli("raymlops down", env)
        run_cli("raymlops down", bystander_env)
    assert not answers("http://127.0.0.1:23265/api/version")
