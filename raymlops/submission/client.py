"""Submit entrypoints through the Ray Jobs API (JobSubmissionClient), stream their logs,
and report their final status — what ``raymlops train`` / ``tune`` and the demo use."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from raymlops import auth
from raymlops.cluster import ClusterAddresses, prepare_client_environment, resolve_addresses
from raymlops.errors import ClusterError, JobError
from raymlops.registry.lineage import CODE_REVISION_ENV, code_revision

#: A job in one of these states will not change again (LOST: the Jobs API no longer knows it).
FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "LOST"})


class JobClient(Protocol):
    """The part of the Jobs API raymlops's own actors use (tests replace it with a fake)."""

    def submit(self, entrypoint: list[str], runtime_env: dict[str, Any]) -> str:
        """Submit ``entrypoint``; returns the submission id."""

    def status(self, job_id: str) -> str:
        """The job's state: PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED, or LOST when unknown."""

    def stop(self, job_id: str) -> None:
        """Ask the job to stop."""


class RayJobClient:
    """:class:`JobClient` over Ray's JobSubmissionClient, connected on first use.

    Args:
        addresses: the cluster; unset = resolved like the CLI does.
    """

    def __init__(self, addresses: ClusterAddresses | None = None) -> None:
        self.addresses = addresses
        self._client = None

    def _connected(self):
        if self._client is None:
            self._client = job_client(self.addresses)
        return self._client

    def submit(self, entrypoint: list[str], runtime_env: dict[str, Any]) -> str:
        """Submit ``entrypoint`` with ``runtime_env``; returns the submission id."""
        import shlex

        return self._connected().submit_job(entrypoint=shlex.join(entrypoint), runtime_env=runtime_env)

    def status(self, job_id: str) -> str:
        """The job's state; LOST when the Jobs API does not know it (submitted to an earlier cluster)."""
        try:
            return str(self._connected().get_job_status(job_id)).split(".")[-1]
        except RuntimeError as exc:
            if "does not exist" in str(exc) or "not found" in str(exc).lower():
                return "LOST"
            raise

    def stop(self, job_id: str) -> None:
        """Ask the job to stop (its status becomes STOPPED)."""
        self._connected().stop_job(job_id)


def job_client(addresses: ClusterAddresses | None = None):
    """A JobSubmissionClient for the resolved cluster, with Ray's token.

    Raises:
        ClusterError: nothing answers at the dashboard address.
    """
    from ray.job_submission import JobSubmissionClient

    addresses = addresses or resolve_addresses()
    prepare_client_environment(addresses)
    try:
        return JobSubmissionClient(addresses.dashboard, headers=auth.auth_headers())
    except (ConnectionError, RuntimeError) as exc:
        raise ClusterError(problem=f"cannot reach the Jobs API at {addresses.dashboard}: {str(exc).splitlines()[0]}",
                           fix="run `raymlops up`, or set RAY_ADDRESS") from None


def job_environment() -> dict[str, str]:
    """Variables a job needs from its submitter: only the code revision. Where raymlops keeps
    state (``RAYMLOPS_HOME``, the registry's database URL and artifact root) is the cluster's own
    environment, never the submitter's: a job's environment is shown in the dashboard, and a
    laptop's paths mean nothing on a remote cluster."""
    env = {}
    revision = code_revision(".")
    if revision.commit:
        env[CODE_REVISION_ENV] = revision.commit + ("+dirty" if revision.dirty else "")
    return env


def project_working_dir(*paths: str | Path | None) -> str | None:
    """The working directory to upload with a job: ``.`` when this is a project (a ``configs/``
    directory, or a relative file the job reads, is here), else ``None`` — a command run from
    anywhere else uploads nothing and the job uses the packaged defaults."""
    if Path("configs").is_dir():
        return "."
    for path in paths:
        if path is not None and not Path(path).is_absolute() and Path(path).exists():
            return "."
    return None


def entrypoint_for(module: str, config: str | Path | None = None, overrides: Sequence[str] = ()) -> list[str]:
    """``python -m MODULE [--config CONFIG] --set K=V ...`` as an argument list (a packaged job,
    e.g. ``raymlops.jobs.train``)."""
    entrypoint = ["python", "-m", module]
    if config is not None:
        entrypoint += ["--config", str(config)]
    for override in overrides:
        entrypoint += ["--set", override]
    return entrypoint


def job_runtime_env(working_dir: str | None = ".", py_modules: Sequence[str] = ()) -> dict[str, Any]:
    """The runtime_env of a job: ``working_dir`` uploaded (when given), your code as ``py_modules``
    (on the job's and every worker's import path), and :func:`job_environment`."""
    env: dict[str, Any] = {"env_vars": job_environment()}
    if working_dir is not None:
        env["working_dir"] = working_dir
    if py_modules:
        env["py_modules"] = list(py_modules)
    return env


def code_paths(paths: Sequence[str]) -> list[str]:
    """Local paths of the code to ship (``code`` in a config), as Ray's ``py_modules`` takes them:
    a package directory as it is; a module file ``name.py`` staged as a package ``name`` of the
    same contents (``py_modules`` ships packages), so ``import name`` works on the cluster.

    Raises:
        ConfigError: naming ``code`` and a path that does not exist, or a file that is not ``.py``.
    """
    import shutil
    import tempfile

    from raymlops.errors import ConfigError

    found = []
    for path in paths:
        if "://" in path:  # already on remote storage: Ray fetches it itself
            found.append(path)
            continue
        full = os.path.abspath(os.path.expanduser(path))
        if not os.path.exists(full):
            raise ConfigError(file="<config>", problems=[("code", f"{path} does not exist (a module file or a package "
                                                          "directory, relative to where you run the command)")])
        if os.path.isfile(full):
            if not full.endswith(".py"):
                raise ConfigError(file="<config>", problems=[("code", f"{path} is neither a .py module nor a directory")])
            package = os.path.join(tempfile.mkdtemp(prefix="raymlops-code-"), os.path.basename(full)[:-3])
            os.makedirs(package)
            shutil.copyfile(full, os.path.join(package, "__init__.py"))
            full = package
        found.append(full)
    return found


def upload_code(paths: Sequence[str], client=None) -> dict[str, Any]:
    """A runtime_env whose ``py_modules`` are ``paths`` (see :func:`code_paths`) uploaded to the
    cluster through the dashboard, as ``ray job submit`` uploads them (``gcs://`` URIs any later
    actor of any job can use); empty when there is no code."""
    modules = code_paths(paths)
    if not modules:
        return {}
    env: dict[str, Any] = {"py_modules": modules}
    (client or job_client())._upload_py_modules_if_needed(env)  # the SDK's own upload path
    return env


def submit(entrypoint: list[str], working_dir: str | None = ".", client=None, py_modules: Sequence[str] = ()) -> str:
    """Submit ``entrypoint`` with ``working_dir`` (and ``py_modules``) uploaded; returns the submission id."""
    import shlex

    client = client or job_client()
    return client.submit_job(entrypoint=shlex.join(entrypoint), runtime_env=job_runtime_env(working_dir, py_modules))


def wait_for(job_id: str, client=None, echo: Callable[[str], None] | None = None, timeout_s: float = 3600,
             until: Callable[[], bool] | None = None, read_whole_s: float = 30.0) -> str:
    """Stream a job's logs to ``echo`` (stdout by default) until it ends; return its final status.

    For the first ``read_whole_s`` seconds the log is read whole every 0.2 s and what is new is
    shown (Ray's log tail polls once a second at each of its hops, so a short job's lines, and its
    end, reached the caller seconds late that way); a job still running then is followed with
    Ray's log tail from where the reading stopped. ``until``: asked after each piece of log; once
    it says True the log has told everything the caller waits for (a command's exit line), and
    the job's status at that moment is returned without waiting for the job to end.
    """
    client = client or job_client()
    show: Callable[[str], object] = echo or sys.stdout.write

    def state() -> str:
        return str(client.get_job_status(job_id)).split(".")[-1]

    deadline = time.time() + timeout_s
    shown = 0
    whole_until = time.time() + min(read_whole_s, timeout_s)
    while time.time() < whole_until:
        status = state()
        text = client.get_job_logs(job_id)  # after the status: a job that had ended has written all of it
        end = len(text) if status in FINAL_STATES else text.rfind("\n") + 1
        if end > shown:
            show(text[shown:end])
            shown = end
        if status in FINAL_STATES or (until is not None and until()):
            return status
        time.sleep(0.2)

    async def stream() -> bool:
        skip = shown
        async for lines in client.tail_job_logs(job_id):  # from the start of the log: skip what was shown
            lines, skip = lines[skip:], max(skip - len(lines), 0)
            if lines:
                show(lines)
            if until is not None and until():
                return True
        return False

    told = False
    try:
        told = asyncio.run(asyncio.wait_for(stream(), timeout=max(deadline - time.time(), 0.001)))
    except asyncio.TimeoutError:
        pass
    status = state()
    while not told and status not in FINAL_STATES and time.time() < deadline:
        time.sleep(1)
        status = state()
    return status


def submit_and_follow(entrypoint: list[str], working_dir: str | None = ".", echo: Callable[[str], None] | None = None,
                      py_modules: Sequence[str] = ()) -> str:
    """Submit, stream the logs, and return the job id once it SUCCEEDED.

    Raises:
        JobError: the job ended FAILED or STOPPED (its last log lines name why).
    """
    client = job_client()
    job_id = submit(entrypoint, working_dir, client, py_modules)
    status = wait_for(job_id, client, echo)
    if status != "SUCCEEDED":
        raise JobError(job_id=job_id, problem=f"ended {status}; see `ray job logs {job_id}`")
    return job_id
