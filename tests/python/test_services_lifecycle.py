"""scripts/test-services: a second, private pair of services (own state directory) proves the
lifecycle promises of the test harness — Kafka answers within 60 s of `up`, PostgreSQL takes
queries, and when the process that started them dies, even by SIGKILL, nothing is left
running and their temporary directories are gone."""

import os
import pathlib
import signal
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/test-services"


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_until(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return predicate()


def test_up_then_sigkill_of_the_owner_leaves_nothing_behind(tmp_path):
    env = dict(os.environ, LEDGERLINE_SERVICES_DIR=str(tmp_path / "state"))
    # The "test runner" whose death must stop the services.
    owner = subprocess.Popen(["sleep", "600"])
    started = time.monotonic()
    up = subprocess.run(
        [str(SCRIPT), "up", "--watch-pid", str(owner.pid)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    elapsed = time.monotonic() - started
    assert up.returncode == 0, up.stderr
    assert elapsed < 60, f"services took {elapsed:.0f} s to answer"
    exported = dict(
        line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines()
    )
    assert exported["KAFKA_BOOTSTRAP_SERVERS"].startswith("127.0.0.1:")
    assert exported["DATABASE_URL"].startswith("postgres://postgres@127.0.0.1:")

    run = tmp_path / "state/run"
    kafka_pid = int((run / "kafka.pid").read_text())
    kafka_dir = pathlib.Path((run / "kafka.dir").read_text().strip())
    pg_dir = pathlib.Path((run / "pg.dir").read_text().strip())
    postmaster_pid = int((pg_dir / "data/postmaster.pid").read_text().split()[0])
    assert alive(kafka_pid) and alive(postmaster_pid)
    status = subprocess.run([str(SCRIPT), "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 0, status.stdout

    owner.send_signal(signal.SIGKILL)
    owner.wait()

    assert wait_until(lambda: not alive(kafka_pid) and not alive(postmaster_pid), 60), (
        "the watchdog did not stop the services after the owner was killed"
    )
    assert wait_until(lambda: not kafka_dir.exists() and not pg_dir.exists() and not run.exists(), 30)


def test_down_without_up_is_harmless(tmp_path):
    env = dict(os.environ, LEDGERLINE_SERVICES_DIR=str(tmp_path / "state"))
    down = subprocess.run([str(SCRIPT), "down"], env=env, capture_output=True, text=True)
    assert down.returncode == 0
    status = subprocess.run([str(SCRIPT), "status"], env=env, capture_output=True, text=True)
    assert status.returncode != 0 and "not running" in status.stdout
