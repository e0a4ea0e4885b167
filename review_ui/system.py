"""Installing what the local review stack needs on first use: a private venv for argilla-server, and
Debian packages (redis-server; chromium for the browser test).

argilla-server 2.8.0 pins old fastapi/pydantic versions that clash with ours, so it lives in its own venv
under the cache folder (`$REFINERY_CACHE`, default ~/.cache/refinery). Installs are serialised with file
locks, so a test session and a user's `refinery review stack up` never install the same thing twice at once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

# click 8.2 breaks argilla-server's typer CLI (`database migrate` and friends); noida-db is the
# Elasticsearch stand-in of the local stack.
SERVER_REQUIREMENTS = ("argilla-server==2.8.0", "click<8.2", "noida-db==0.2.3")


class InstallError(RuntimeError):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("REFINERY_CACHE") or Path.home() / ".cache" / "refinery")


@contextmanager
def file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def server_venv() -> Path:
    return Path(os.environ.get("REFINERY_ARGILLA_VENV") or cache_dir() / "argilla-venv")


def ensure_server_venv(log=print) -> Path:
    """The venv with argilla-server and noida-db; created and filled on first use (a minute or two)."""
    venv = server_venv()
    marker = venv / ".refinery-requirements"
    wanted = "\n".join(SERVER_REQUIREMENTS)
    if marker.is_file() and marker.read_text() == wanted:
        return venv
    with file_lock(cache_dir() / "argilla-venv.lock"):
        if marker.is_file() and marker.read_text() == wanted:
            return venv
        log(f"installing argilla-server into {venv} (first use only, about a minute)...")
        if not (venv / "bin" / "python").exists():
            base = getattr(sys, "_base_executable", None) or sys.executable
            _check([base, "-m", "venv", str(venv)], "creating the argilla-server venv")
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        _check([*pip, *SERVER_REQUIREMENTS], "installing argilla-server")
        marker.write_text(wanted)
    return venv


def noida_binary(venv: Path) -> Path:
    """The noida-db executable shipped inside its wheel. We start it directly: the `noida-db` console
    script runs it as a child and leaves that child behind when it is killed."""
    found = sorted(venv.glob("lib/python3*/site-packages/noida_db/noida-db"))
    if not found:
        raise InstallError(f"noida-db binary not found in {venv}; delete that folder to reinstall")
    binary = found[0]
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return binary


def ensure_debian_package(binary: str, package: str, log=print) -> str:
    """Path of `binary`, installing Debian's `package` with apt-get when it is missing (needs root)."""
    found = shutil.which(binary) or (f"/usr/bin/{binary}" if Path(f"/usr/bin/{binary}").exists() else None)
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise InstallError(f"{binary} is missing: install the Debian package {package!r} (apt-get install {package})")
    log(f"installing Debian package {package} (first use only)...")
    with file_lock(Path("/tmp/refinery-apt.lock")):
        if not shutil.which(binary):
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
            if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
                # A fresh machine has no package lists yet.
                _check(["apt-get", "update", "-q"], "apt-get update", env)
                _check(cmd, f"apt-get install {package}", env)
    found = shutil.which(binary) or (f"/usr/bin/{binary}" if Path(f"/usr/bin/{binary}").exists() else None)
    if not found:
        raise InstallError(f"installed {package} but {binary} is still not on PATH")
    return found


def _check(cmd: list[str], what: str, env: dict | None = None) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise InstallError(f"{what} failed ({' '.join(cmd)}):\n{tail}")
