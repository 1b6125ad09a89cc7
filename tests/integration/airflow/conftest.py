"""A real Airflow 3 for the DAG-runs source: its own venv, SQLite, the API server, one run.

The venv lives in ~/.cache/sleuth-integration/airflow and is reused (the first install takes
a few minutes). Each session gets a fresh AIRFLOW_HOME in tmp, the simple auth manager with a
known viewer, an API server on a free port, and one run of `sleuth_probe` (see
`sleuth_probe_dag.py`) made by `airflow dags test --use-executor`, which runs the tasks as a
worker would (tries, retries, log files) without a scheduler.

`SLEUTH_RECORD=1` makes the test write the server's answers to
tests/sources/recordings/airflow/, which the fast tests replay.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

AIRFLOW_SPEC = "apache-airflow==3.3.*"
VENV = Path.home() / ".cache" / "sleuth-integration" / "airflow"
STAMP = VENV / ".sleuth-installed"
DAG_FILE = Path(__file__).with_name("sleuth_probe_dag.py")
DAG_ID = "sleuth_probe"
USER = "sleuth"
PASSWORD = "probe-pass-9f3a"  # a throwaway for a throwaway server; tests check it never leaks
RECORDINGS = Path(__file__).resolve().parents[2] / "sources" / "recordings" / "airflow"


@dataclass(frozen=True)
class AirflowServer:
    url: str
    home: Path
    run_id: str


def airflow_venv() -> Path:
    """The venv with Airflow installed, made on first use."""
    if STAMP.is_file() and (VENV / "bin" / "airflow").is_file():
        return VENV
    VENV.parent.mkdir(parents=True, exist_ok=True)
    if not (VENV / "bin" / "python").is_file():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", AIRFLOW_SPEC], check=True, timeout=1800)
    STAMP.write_text(AIRFLOW_SPEC + "\n")
    return VENV


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment(home: Path, port: int) -> dict[str, str]:
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:viewer",  # reading is enough
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "sleuth-integration-jwt",
        "AIRFLOW__API__SECRET_KEY": "sleuth-integration-key",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"airflow api-server exited: {log.read_text()[-3000:]}")
        try:
            if httpx2.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(1)
    raise RuntimeError(f"airflow api-server not healthy after 180 s: {log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the server and the workers it started (its own process group), nothing else."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.fixture(scope="session")
def airflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServer]:
    venv = airflow_venv()
    airflow = str(venv / "bin" / "airflow")
    home = tmp_path_factory.mktemp("airflow_home")
    (home / "dags").mkdir()
    (home / "dags" / DAG_FILE.name).write_text(DAG_FILE.read_text())
    port = _free_port()
    env = _environment(home, port)
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=600)
    log = home / "api-server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([airflow, "api-server", "--host", "127.0.0.1", "--port",
                                   str(port), "--workers", "1"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server, log)
        # The run fails on purpose (that is what the test reads), so the exit code is 1.
        test = subprocess.run([airflow, "dags", "test", "--use-executor", DAG_ID, "2026-11-20"],
                              env=env, capture_output=True, text=True, timeout=600)
        runs = _runs(url)
        if len(runs) != 1:
            raise RuntimeError(f"`airflow dags test` made {len(runs)} runs:\n"
                               f"{test.stdout[-3000:]}\n{test.stderr[-3000:]}")
        yield AirflowServer(url=url, home=home, run_id=runs[0])
    finally:
        _stop(server)


def _runs(url: str) -> list[str]:
    token = httpx2.post(f"{url}/auth/token", json={"username": USER, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    runs = httpx2.get(f"{url}/api/v2/dags/{DAG_ID}/dagRuns", headers=headers).json()
    return [r["dag_run_id"] for r in runs["dag_runs"]]


class Recorder:
    """Keeps the JSON answers a client got, to replay them in the fast tests."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], dict[str, object]] = {}

    def __call__(self, response: httpx2.Response) -> None:
        response.read()
        request = response.request
        path = request.url.raw_path.decode().split("?")[0]
        if request.method == "POST" and path == "/auth/token":
            body: object = {"access_token": "recorded-token"}  # never a real token
        else:
            try:
                body = response.json()
            except ValueError:
                return
        key = (request.method, path)
        kept = self.answers.get(key)
        if kept is None or _entries(body) >= _entries(kept["body"]):  # the fullest page
            self.answers[key] = {"method": request.method, "path": path,
                                 "status": response.status_code, "body": body}

    def write(self, folder: Path, meta: dict[str, object]) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "responses.json"
        answers = sorted(self.answers.values(), key=lambda a: (a["path"], a["method"]))
        target.write_text(json.dumps({"meta": meta, "answers": answers}, indent=1) + "\n")
        return target


def _entries(body: object) -> int:
    if isinstance(body, dict):
        return max((len(v) for v in body.values() if isinstance(v, list)), default=0)
    return 0


@pytest.fixture
def recorder() -> Recorder | None:
    return Recorder() if os.environ.get("SLEUTH_RECORD") == "1" else None
