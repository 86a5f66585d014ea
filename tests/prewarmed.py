"""The tests' commands (`python train.py ...`, `python -m ganforge.cli ...`) in a
pre-imported interpreter, forked once per command.

A fresh interpreter spends 5-8 s of a 2-core machine importing torch, Lightning (which
pulls in torchmetrics, scipy.signal and matplotlib) and Hydra before a tiny run's second of
work; the suite starts about a hundred such commands. Here one server process per test
worker imports those libraries once, single-threaded and before any torch operation (so
that forking it is safe), and forks a child for each command. The child is a separate
process as the shell would start: its own pid, working directory, environment, argv,
stdout and stderr (files, read back as text), exit status and signals; it runs the script
with `runpy` as `python script` or `python -m module` would. ganforge itself is imported
in the child, never in the server, so nothing of it is shared between commands.

What a forked child cannot take over: environment variables that the preloaded libraries
read at import time (thread counts, CUDA, PYTHONPATH, ...). A command whose environment
changes any of them runs in a fresh interpreter instead, as does every command when
GANFORGE_TEST_FRESH_PROCESS=1.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Read by torch, its OpenMP/MKL runtimes, matplotlib or the interpreter when they start.
IMPORT_TIME_PREFIXES = ("OMP_", "MKL_", "KMP_", "GOMP_", "CUDA_", "NVIDIA_", "PYTORCH_", "TORCH_", "MPL", "PYTHON")
# ... except these, which are read when used (or handled below: PYTHONUNBUFFERED).
READ_AT_USE = {"TORCH_HOME", "PYTHONUNBUFFERED"}
PRELOAD = ("torch", "torch._dynamo", "lightning", "lightning.pytorch", "torchmetrics", "hydra", "hydra.main",
           "omegaconf", "numpy", "scipy.signal", "PIL.Image")


class Server:
    """One pre-imported server process; `run` forks a child of it per command."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.environment = dict(os.environ)
        self.process = subprocess.Popen([sys.executable, "-m", "tests.prewarmed", str(theirs.fileno())], cwd=REPO,
                                        pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        theirs.close()
        self.socket = ours
        self.buffer = b""
        self.pid: int | None = None  # the running command's: one at a time

    def accepts(self, env: dict[str, str]) -> bool:
        """Whether the server is free and a child of it can run with `env` as a fresh
        process would."""
        if self.pid is not None or self.process.poll() is not None:
            return False
        names = set(env) | set(self.environment)
        return all(env.get(name) == self.environment.get(name) for name in names
                   if name.startswith(IMPORT_TIME_PREFIXES) and name not in READ_AT_USE)

    def start(self, argv: list[str], cwd: Path, env: dict[str, str], stdout: Path, stderr: Path) -> int:
        request = {"argv": argv, "cwd": str(cwd), "env": env, "stdout": str(stdout), "stderr": str(stderr)}
        self.socket.sendall((json.dumps(request) + "\n").encode())
        self.pid = self._reply(None)["pid"]
        return self.pid

    def wait(self, timeout: float | None) -> int:
        """The exit status as subprocess gives it (-N: killed by signal N); TimeoutError
        after `timeout` seconds, the child left running."""
        code = self._reply(timeout)["returncode"]
        self.pid = None
        return code

    def _reply(self, timeout: float | None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.socket], [], [], left)[0]:
                raise TimeoutError
            data = self.socket.recv(65536)
            if not data:
                raise RuntimeError("the pre-imported test server died")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        if self.pid is not None:
            _kill(self.pid)
        self.socket.close()
        self.process.wait(timeout=30)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


_server: Server | None = None


def server() -> Server:
    global _server
    if _server is None or _server.process.poll() is not None:
        _server = Server()
        atexit.register(_server.close)
    return _server


class _ServerChild:
    """A child of the server, waited for as a Popen is (poll, wait)."""

    def __init__(self, server: Server, args: list[str], cwd: Path, env: dict[str, str], out: Path, err: Path):
        self.server = server
        self.pid = server.start(args, cwd, env, out, err)

    def poll(self) -> int | None:
        try:
            return self.server.wait(0.0)
        except TimeoutError:
            return None

    def wait(self, timeout: float | None = None) -> int:
        try:
            return self.server.wait(timeout)
        except TimeoutError:
            raise subprocess.TimeoutExpired(self.pid, timeout) from None


class Command:
    """A started command: `pid`, `poll()`, `send_signal()`, `communicate(timeout)`, as
    subprocess.Popen with text stdout and stderr."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.args = [sys.executable, *args]
        self.returncode: int | None = None
        self._folder = tempfile.TemporaryDirectory(prefix="ganforge-command-")
        self._out, self._err = Path(self._folder.name) / "stdout", Path(self._folder.name) / "stderr"
        self._out.touch()
        self._err.touch()
        chosen = None if os.environ.get("GANFORGE_TEST_FRESH_PROCESS") == "1" else server()
        if chosen is not None and chosen.accepts(env):
            self._process = _ServerChild(chosen, args, cwd, env, self._out, self._err)
        else:
            with open(self._out, "w") as out, open(self._err, "w") as err:
                self._process = subprocess.Popen(self.args, cwd=cwd, env=env, stdout=out, stderr=err,
                                                 stdin=subprocess.DEVNULL)
        self.pid = self._process.pid

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._process.poll()
        return self.returncode

    def send_signal(self, how: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, how)

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                self.returncode = self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                raise subprocess.TimeoutExpired(self.args, timeout) from None
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill(self.pid)
            self.wait()
            raise
        out, err = (path.read_text(errors="replace") for path in (self._out, self._err))
        self._folder.cleanup()
        return out, err


def run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float | None = None) -> subprocess.CompletedProcess:
    """subprocess.run([sys.executable, *args], cwd, env, capture_output=True, text=True) on
    the server: `args` is `[script.py, ...]` or `["-m", module, ...]`."""
    command = Command(args, Path.cwd() if cwd is None else cwd, dict(os.environ if env is None else env))
    out, err = command.communicate(timeout)
    return subprocess.CompletedProcess(command.args, command.returncode, out, err)


# ---- the server side -------------------------------------------------------------------

def _serve(fd: int) -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    connection = socket.socket(fileno=fd)
    requests = connection.makefile("r")
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            requests.close()
            connection.close()
            _child(request)  # runs the command, ends in SystemExit: never returns here
        connection.sendall((json.dumps({"pid": pid}) + "\n").encode())
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        connection.sendall((json.dumps({"returncode": code}) + "\n").encode())


def _child(request: dict) -> None:
    import io
    import runpy

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                                   write_through=unbuffered)
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                                   errors="backslashreplace", write_through=True)
    argv = request["argv"]
    if argv[0] == "-m":
        sys.argv = argv[1:]
        sys.path[0] = os.getcwd()
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        sys.path[0] = str(Path(argv[0]).resolve().parent)
        runpy.run_path(argv[0], run_name="__main__")
    sys.exit(0)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
