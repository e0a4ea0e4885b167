"""The local review stack: a real argilla-server 2.8.0, its rq worker, redis-server and a search engine,
run as background processes owned by one folder (`$REFINERY_CACHE/review-stack` by default).

The search engine is noida-db, a small Elasticsearch emulator, so the stack needs no JVM and starts in
about 20 s in under 1 GB. It is for local work and tests only: teams point Refinery at a real Argilla
deployment backed by Elasticsearch with ARGILLA_API_URL and ARGILLA_API_KEY (see `review_ui.connection`).
Everything noida-specific lives in this module.

Layout of a stack folder:
    stack.json        url, credentials, ports and the processes we started (pid + start time)
    argilla.db        argilla's SQLite database (records, responses, users) - survives restarts
    noida/            the emulator's saved indexes
    home/ tmp/ logs/  argilla's home, a private TMPDIR (each server process unpacks 14 MB of UI files
                      into it), and one log file per process
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from review_ui.system import cache_dir, ensure_debian_package, ensure_server_venv, noida_binary

SERVICES = ("search", "redis", "server", "worker")  # start order; stopped in reverse
OWNER = "argilla"  # the owner user argilla's `create_default` makes


class StackError(RuntimeError):
    pass


def default_stack_dir() -> Path:
    return Path(os.environ.get("REFINERY_REVIEW_STACK") or cache_dir() / "review-stack")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class StackState:
    url: str
    port: int
    search_port: int
    redis_port: int
    username: str
    password: str
    api_key: str
    venv: str
    processes: dict[str, dict] = field(default_factory=dict)  # service -> {pid, started}

    def save(self, root: Path) -> None:
        path = root / "stack.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.chmod(0o600)  # holds the owner's password and API key
        os.replace(tmp, path)

    @classmethod
    def load(cls, root: Path) -> StackState | None:
        path = root / "stack.json"
        return cls(**json.loads(path.read_text())) if path.is_file() else None


class LocalStack:
    def __init__(self, root: Path | None = None, log=print):
        self.root = Path(root or default_stack_dir()).resolve()
        self.log = log

    # ---- queries ------------------------------------------------------------------------------------

    @property
    def state(self) -> StackState | None:
        return StackState.load(self.root)

    def process(self, service: str) -> psutil.Process | None:
        """The live process we started for `service`, or None. Matching the start time too means a pid
        the system has reused for something else is never mistaken for ours (and never killed)."""
        st = self.state
        info = st.processes.get(service) if st else None
        if not info:
            return None
        try:
            p = psutil.Process(info["pid"])
            if abs(p.create_time() - info["started"]) < 1.0 and p.status() != psutil.STATUS_ZOMBIE:
                return p
        except psutil.NoSuchProcess:
            pass
        return None

    def healthy(self) -> bool:
        st = self.state
        if st is None or any(self.process(s) is None for s in SERVICES):
            return False
        return _http_ok(f"{st.url}/api/v1/version")

    def status(self) -> dict:
        st = self.state
        return {
            "dir": str(self.root),
            "url": st.url if st else None,
            "username": st.username if st else None,
            "running": {s: (p.pid if (p := self.process(s)) else None) for s in SERVICES},
            "healthy": self.healthy(),
        }

    # ---- up / down ----------------------------------------------------------------------------------

    def up(self, port: int | None = None, timeout: float = 180) -> StackState:
        """Start the stack (installing it on first use); a healthy running stack is left as it is."""
        if self.healthy():
            return self.state
        self.down()  # whatever is left of an earlier stack (a crash, a reboot)
        venv = ensure_server_venv(self.log)
        redis = ensure_debian_package("redis-server", "redis-server", self.log)
        for sub in ("noida", "home", "tmp", "logs", "redis"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        old = self.state
        port = port or (old.port if old else 6900)
        if port_open(port):
            raise StackError(f"port {port} is taken; pass another port (`refinery review stack up --port N`)")
        st = StackState(
            url=f"http://127.0.0.1:{port}", port=port, search_port=free_port(), redis_port=free_port(),
            # Credentials are made once per stack folder: argilla keeps the first owner it created.
            username=OWNER, password=old.password if old else secrets.token_urlsafe(12),
            api_key=old.api_key if old else "refinery." + secrets.token_urlsafe(24), venv=str(venv),
        )
        st.save(self.root)
        self._spawn("search", [str(noida_binary(venv)), "start", "--data-dir", str(self.root / "noida"),
                               "--only", "elasticsearch", "--elasticsearch-port", str(st.search_port)])
        self._spawn("redis", [redis, "--port", str(st.redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(self.root / "redis")])
        deadline = time.monotonic() + timeout
        self._wait("search", lambda: _http_ok(f"http://127.0.0.1:{st.search_port}/"), deadline)
        self._wait("redis", lambda: port_open(st.redis_port), deadline)
        python = str(venv / "bin" / "python")
        self._run_once([python, "-m", "argilla_server", "database", "migrate"], "database migrate")
        self._run_once([python, "-m", "argilla_server", "database", "users", "create_default",
                        "--api-key", st.api_key, "--password", st.password, "--quiet"], "create the owner user")
        self.start_service("server", deadline)
        self.start_service("worker", deadline)
        return self.state

    def start_service(self, service: str, deadline: float | None = None) -> None:
        """(Re)start one argilla process; used by `up` and by tests that kill the server on purpose."""
        st = self.state
        python = str(Path(st.venv) / "bin" / "python")
        if service == "server":
            self._spawn("server", [python, "-m", "argilla_server", "start", "--host", "127.0.0.1",
                                   "--port", str(st.port), "--no-access-log"])
            self._wait("server", lambda: _http_ok(f"{st.url}/api/v1/version"), deadline or time.monotonic() + 120)
        elif service == "worker":
            self._spawn("worker", [python, "-m", "argilla_server", "worker", "--num-workers", "1"])
        else:
            raise StackError(f"start_service: {service!r} is not an argilla process (server, worker)")

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        """Kill one service and its children (uvicorn and rq fork workers)."""
        p = self.process(service)
        if p is None:
            return
        procs = [*p.children(recursive=True), p]
        for q in procs:
            try:
                q.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=10)
        for q in alive:
            q.kill()
        psutil.wait_procs(alive, timeout=5)

    def down(self) -> None:
        """Stop every process of this stack; the data (database, indexes) stays for the next `up`."""
        for service in reversed(SERVICES):
            self.kill(service, signal.SIGTERM)

    # ---- helpers ------------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        st = self.state
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("ARGILLA_")},
            "ARGILLA_HOME_PATH": str(self.root / "home"),
            "ARGILLA_DATABASE_URL": f"sqlite+aiosqlite:///{self.root / 'argilla.db'}?check_same_thread=False",
            "ARGILLA_SEARCH_ENGINE": "elasticsearch",
            "ARGILLA_ELASTICSEARCH": f"http://127.0.0.1:{st.search_port}",
            "ARGILLA_REDIS_URL": f"redis://127.0.0.1:{st.redis_port}/0",
            "ARGILLA_SHOW_HUGGINGFACE_SPACE_PERSISTENT_STORAGE_WARNING": "false",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_OFFLINE": "1",
            "TMPDIR": str(self.root / "tmp"),
            "PYTHONUNBUFFERED": "1",
        }

    def _spawn(self, service: str, cmd: list[str]) -> None:
        log = open(self.root / "logs" / f"{service}.log", "ab")
        # A new session: the stack outlives the `refinery review stack up` that started it, and a Ctrl-C
        # in that terminal does not reach it.
        p = subprocess.Popen(cmd, env=self.env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=self.root, start_new_session=True)
        log.close()
        st = self.state
        st.processes[service] = {"pid": p.pid, "started": psutil.Process(p.pid).create_time()}
        st.save(self.root)

    def _wait(self, service: str, ready, deadline: float) -> None:
        while not ready():
            if self.process(service) is None:
                raise StackError(f"{service} exited while starting; see {self.root / 'logs' / (service + '.log')}:\n"
                                 + self.log_tail(service))
            if time.monotonic() > deadline:
                raise StackError(f"{service} did not become ready in time; see its log:\n" + self.log_tail(service))
            time.sleep(0.25)

    def _run_once(self, cmd: list[str], what: str) -> None:
        r = subprocess.run(cmd, env=self.env(), cwd=self.root, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise StackError(f"{what} failed:\n" + "\n".join((r.stdout + r.stderr).strip().splitlines()[-20:]))

    def log_tail(self, service: str, lines: int = 20) -> str:
        path = self.root / "logs" / f"{service}.log"
        if not path.is_file():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _http_ok(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False
