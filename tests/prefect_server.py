"""A real Prefect stack in subprocesses, as an operator runs it (README, "Running on Prefect"):
`prefect server start` on a free port with its own PREFECT_HOME and database, a process work pool,
this repository's prefect.yaml deployed with `prefect deploy --all`, and `prefect worker start`.
Used by tests/test_prefect_server.py and bench/prefect_latency.py. Every wait is bounded; `close`
kills every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import yaml
from mail import free_port

REPO = Path(__file__).resolve().parent.parent
PREFECT = [sys.executable, "-m", "prefect"]
PG_ADMIN = os.environ.get("DISSEMINATION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


class PrefectStack:
    def __init__(self, tmp: Path, database: str = "sqlite") -> None:
        self.tmp = tmp
        self.home = tmp / "prefect-home"
        self.home.mkdir(parents=True)
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.procs: dict[str, subprocess.Popen] = {}
        self.pg_database: str | None = None
        if database == "postgresql":
            import psycopg

            self.pg_database = "prefect_" + uuid.uuid4().hex[:10]
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {self.pg_database}")
            host = PG_ADMIN.split("@", 1)[1].rsplit("/", 1)[0]
            db_url = f"postgresql+asyncpg://postgres@{host}/{self.pg_database}"
        else:
            db_url = f"sqlite+aiosqlite:///{self.home / 'prefect.db'}"
        # Only what a fresh operator's environment would have: no ambient PREFECT_* of the caller
        # (a test harness's API URL, a profile) leaks into the stack.
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.env = {**base, "PREFECT_HOME": str(self.home), "PREFECT_API_URL": self.api,
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_ENABLED": "false",
                    "PREFECT_API_DATABASE_CONNECTION_URL": db_url}

    # --- processes ------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], env: dict | None = None, cwd: Path = REPO) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")
        proc = subprocess.Popen(args, env={**self.env, **(env or {})}, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own group: close() reaches the flow subprocesses
        self.procs[name] = proc
        return proc

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def run(self, *args: str, env: dict | None = None, timeout: float = 180) -> str:
        done = subprocess.run([*PREFECT, *args], env={**self.env, **(env or {})}, cwd=REPO, capture_output=True,
                              text=True, timeout=timeout)
        assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def start_server(self, timeout: float = 180) -> None:
        proc = self._spawn("server", [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                           env={"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"prefect server exited:\n{self.log('server')}"
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"prefect server not healthy within {timeout}s:\n{self.log('server')}")

    def deploy(self, schedules: dict[str, str | None], env: dict | None = None) -> None:
        """Create the process work pool and deploy this repository's prefect.yaml as it is, except
        for the schedules: `schedules` maps deployment name to a cron (None: no schedule), so a test
        sees a run within a minute instead of five."""
        self.run("work-pool", "create", "dissemination", "--type", "process")
        config = yaml.safe_load((REPO / "prefect.yaml").read_text())
        for deployment in config["deployments"]:
            if deployment["name"] in schedules:
                cron = schedules[deployment["name"]]
                deployment["schedules"] = ([{"cron": cron, "timezone": "Europe/Amsterdam"}] if cron else [])
        copy = self.tmp / "prefect.yaml"
        copy.write_text(yaml.safe_dump(config, sort_keys=False))
        self.run("--no-prompt", "deploy", "--all", "--prefect-file", str(copy), env=env)

    def start_worker(self, env: dict, name: str = "worker") -> subprocess.Popen:
        return self._spawn(name, [*PREFECT, "worker", "start", "--pool", "dissemination", "--name", name],
                           env={"PREFECT_WORKER_QUERY_SECONDS": "2", **env}, cwd=self.tmp)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self.pg_database:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {self.pg_database} WITH (FORCE)")

    # --- the API --------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict | None = None) -> dict | list:
        """One API call; 503 and 429 (the server's answer when its database is busy, e.g. SQLite
        locked on a loaded machine) are retried a bounded number of times, as Prefect's client does."""
        for attempt in range(10):
            response = httpx.request(method, f"{self.api}{path}", json=body, timeout=30)
            if response.status_code not in (429, 503):
                break
            time.sleep(1 + attempt)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict | None = None) -> dict | list:
        return self._call("POST", path, body or {})

    def get(self, path: str) -> dict | list:
        return self._call("GET", path)

    def deployment(self, flow: str, name: str) -> dict:
        return self.get(f"/deployments/name/{flow}/{name}")

    def flow_runs(self, deployment_id: str) -> list[dict]:
        return self.post("/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}},
                                               "sort": "EXPECTED_START_TIME_ASC", "limit": 200})

    def wait_for_runs(self, deployment_id: str, done, timeout: float, what: str) -> list[dict]:
        """Poll the deployment's runs until `done(runs)`; fail with the logs after `timeout`."""
        deadline = time.monotonic() + timeout
        runs: list[dict] = []
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                assert proc.poll() is None, f"{name} exited:\n{self.log(name)}"
            runs = self.flow_runs(deployment_id)
            if done(runs):
                return runs
            time.sleep(2)
        states = [(r["name"], r["state_type"], r.get("auto_scheduled")) for r in runs]
        raise AssertionError(f"not within {timeout:.0f}s: {what}; runs: {states}\n--- server log:\n"
                             f"{self.log('server')}\n--- worker log:\n{self.log('worker')}")
