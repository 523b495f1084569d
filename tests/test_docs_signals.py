"""The shell snippet of docs/running.md that forwards a cancel's signals to shotgraph, run as
GitHub runs a step (the signal sent to the shell alone), in bash and in sh: the command gets
the signal, and the step exits with the command's own code, whatever that is."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTION = (ROOT / "docs" / "running.md").read_text().split("## Signals")[1].split("\n## ")[0]
(SNIPPET,) = [b for b in re.findall(r"```sh\n(.*?)```", SECTION, re.S) if "trap" in b]
# GitHub runs a step with `bash -e` (--noprofile --norc -eo pipefail); sh is the POSIX floor.
SHELLS = ["bash", "bash -e", "sh"]

# shotgraph at the seam: it stops on SIGINT or SIGTERM as shotgraph does (a moment to clean
# up, then 128 + the signal), or exits at once with $FAKE_EXIT. It waits for the signals
# with them blocked (sigtimedwait), not in a handler around time.sleep: a signal that lands
# after Python last checked for one and before the sleep's system call began would only be
# handled when the sleep ends, a minute later (seen about once in 150 steps under load).
FAKE = f"""#!{sys.executable}
import os, signal, sys, time
if "FAKE_EXIT" in os.environ:
    sys.exit(int(os.environ["FAKE_EXIT"]))
STOPS = {{signal.SIGINT, signal.SIGTERM}}
signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)  # held from now on until waited for
if "FAKE_LISTENING" in os.environ:  # a file that says the signals are caught from now on
    open(os.environ["FAKE_LISTENING"], "w").close()
print("args", *sys.argv[1:], flush=True)
got = signal.sigtimedwait(STOPS, 60)
if got is None:
    sys.exit(99)
time.sleep(0.3)
print("stopped by", signal.Signals(got.si_signo).name, flush=True)
sys.exit(128 + got.si_signo)
"""


@pytest.fixture(autouse=True)
def _interrupts_as_a_runner_leaves_them() -> Iterator[None]:
    """GitHub's runner starts a step's shell with SIGINT at its default. A pytest started
    with SIGINT ignored (``pytest &`` in a script without job control) would pass that on
    to the shell, which then cannot trap it: the test would wait out its timeout and fail.
    A handler here is reset to the default in the children, as the runner has it."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture
def path_with_fake(tmp_path: Path) -> str:
    fake = tmp_path / "shotgraph"
    fake.write_text(FAKE)
    fake.chmod(stat.S_IRWXU)
    return f"{tmp_path}{os.pathsep}{os.environ['PATH']}"


def step(shell: str, path: str, **env: str) -> subprocess.Popen[str]:
    return run_snippet(shell, path, SNIPPET, **env)


def run_snippet(shell: str, path: str, snippet: str, **env: str) -> subprocess.Popen[str]:
    program, *options = shell.split()
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed: the snippet is not checked under it")
    return subprocess.Popen(
        [program, *options, "-c", snippet],
        env={**os.environ, "PATH": path, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("code", [0, 4, 130])
def test_the_step_exits_with_shotgraphs_code(shell: str, code: int, path_with_fake: str) -> None:
    done = step(shell, path_with_fake, FAKE_EXIT=str(code))
    out, _ = done.communicate(timeout=30)
    assert done.returncode == code, out
    assert f"shotgraph exited {code}" in out


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_shell_alone_reaches_shotgraph(
    shell: str, sent: signal.Signals, path_with_fake: str
) -> None:
    running = step(shell, path_with_fake)
    assert running.stdout is not None
    assert running.stdout.readline() == "args run pipelines/episode.yaml --frozen --budget 5\n"
    os.kill(running.pid, sent)  # the shell's pid only, as GitHub's runner does
    out, _ = running.communicate(timeout=30)
    assert f"stopped by {sent.name}" in out
    assert running.returncode == 128 + sent, out
    assert f"shotgraph exited {128 + sent}" in out


@pytest.mark.parametrize("shell", SHELLS)
def test_a_cancel_before_shotgraphs_pid_is_known_is_passed_on(
    shell: str, path_with_fake: str, tmp_path: Path
) -> None:
    # The shell signals itself before it starts shotgraph, so the trap cannot forward it
    # yet; the snippet must pass it on once $pid is known. Here that waits until the fake
    # listens (a signal sent to a process still starting may be lost, as docs/running.md
    # says; GitHub's next signal comes 7.5 s later).
    listening = tmp_path / "listening"
    early = SNIPPET.replace("shotgraph run", "kill -TERM $$; shotgraph run", 1).replace(
        "pid=$!\n", f'pid=$!\nuntil [ -e "{listening}" ]; do sleep 0.01; done\n', 1
    )
    assert early.count("kill -TERM $$") == 1 and str(listening) in early
    running = run_snippet(shell, path_with_fake, early, FAKE_LISTENING=str(listening))
    try:
        out, _ = running.communicate(timeout=20)
    finally:
        running.kill()
    assert "stopped by SIGTERM" in out
    assert running.returncode == 128 + signal.SIGTERM, out
    assert f"shotgraph exited {128 + signal.SIGTERM}" in out
