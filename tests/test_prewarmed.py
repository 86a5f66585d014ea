"""The tests' command runner (tests/prewarmed.py) gives a command what a fresh interpreter
would: its arguments, folder, environment, streams, exit status and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import prewarmed

SCRIPT = r"""
import os, sys, json
print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0], "name": __name__,
                  "value": os.environ.get("PREWARMED_VALUE"), "pid": os.getpid(),
                  "threads": os.environ.get("OMP_NUM_THREADS"),
                  "torch_threads": __import__("torch").get_num_threads()}))
print("to stderr", file=sys.stderr)
mode = sys.argv[1] if len(sys.argv) > 1 else ""
if mode == "exit":
    sys.exit(3)
if mode == "raise":
    raise ValueError("broken on purpose")
if mode == "sleep":
    print("sleeping", flush=True)
    import time
    time.sleep(60)
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "folder" / "script.py"
    path.parent.mkdir()
    path.write_text(SCRIPT)
    return path


def _report(result: subprocess.CompletedProcess) -> dict:
    import json

    return json.loads(result.stdout.splitlines()[0])


def test_a_command_gets_its_arguments_folder_environment_and_streams(script, tmp_path):
    result = prewarmed.run([str(script), "plain", "x y"], cwd=tmp_path, env={**os.environ, "PREWARMED_VALUE": "42"})
    assert result.returncode == 0, result.stderr
    report = _report(result)
    assert report["argv"] == [str(script), "plain", "x y"] and report["name"] == "__main__"
    assert report["cwd"] == str(tmp_path) and report["path0"] == str(script.parent)
    assert report["value"] == "42" and report["pid"] not in (os.getpid(), prewarmed.server().process.pid)
    assert result.stderr == "to stderr\n"
    # The environment is the command's own: a variable of an earlier command is gone.
    assert _report(prewarmed.run([str(script)], cwd=tmp_path))["value"] is None


def test_a_module_runs_as_python_dash_m_would(tmp_path):
    result = prewarmed.run(["-m", "ganforge.cli", "--help"], cwd=tmp_path)
    assert result.returncode == 0 and result.stderr.startswith("usage: ganforge <command>")
    assert prewarmed.run(["-m", "ganforge.cli", "no-such-command"], cwd=tmp_path).returncode == 2


def test_exit_status_exceptions_and_signals_are_those_of_a_process(script, tmp_path):
    assert prewarmed.run([str(script), "exit"], cwd=tmp_path).returncode == 3
    failed = prewarmed.run([str(script), "raise"], cwd=tmp_path)
    assert failed.returncode == 1
    assert "Traceback" in failed.stderr and failed.stderr.rstrip().endswith("ValueError: broken on purpose")

    command = prewarmed.Command([str(script), "sleep"], tmp_path, dict(os.environ))
    deadline = time.monotonic() + 60
    while "sleeping" not in command._out.read_text():
        assert time.monotonic() < deadline and command.poll() is None
        time.sleep(0.01)
    command.send_signal(signal.SIGTERM)
    out, _ = command.communicate(timeout=60)
    assert command.returncode == -signal.SIGTERM and "sleeping" in out

    with pytest.raises(subprocess.TimeoutExpired):
        prewarmed.run([str(script), "sleep"], cwd=tmp_path, timeout=0.5)
    assert prewarmed.run([str(script), "exit"], cwd=tmp_path).returncode == 3  # the server goes on


def test_a_thread_count_set_for_the_command_gets_a_fresh_interpreter(script, tmp_path):
    # torch reads OMP_NUM_THREADS when it is imported: the server imported it already.
    result = prewarmed.run([str(script)], cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    report = _report(result)
    assert report["threads"] == "1" and report["torch_threads"] == 1
    assert not prewarmed.server().accepts({**os.environ, "OMP_NUM_THREADS": "1"})
    assert prewarmed.server().accepts({**os.environ, "TORCH_HOME": "/elsewhere", "WANDB_MODE": "offline"})


def test_the_runner_gives_the_same_output_as_a_fresh_interpreter(script, tmp_path):
    fresh = subprocess.run([sys.executable, str(script), "exit"], cwd=tmp_path, capture_output=True, text=True)
    forked = prewarmed.run([str(script), "exit"], cwd=tmp_path)
    assert (forked.returncode, forked.stderr) == (fresh.returncode, fresh.stderr)
    keys = ("argv", "cwd", "path0", "name", "value", "threads", "torch_threads")
    assert {k: _report(forked)[k] for k in keys} == {k: _report(fresh)[k] for k in keys}
