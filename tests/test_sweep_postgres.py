"""``chainrule sweep --storage postgresql://...`` against a real PostgreSQL server, started here
from Debian's packages on 127.0.0.1 with its own data folder and port, and stopped at the end:
two worker invocations joining one study, a kill -9 then the same command, and the refusals
(wrong password, no server, a study of other settings)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest

from chainrule.app import sweep_storage
from chainrule.app.cli import main
from test_sweep import FAST, chainrule, readme_section

USER, PASSWORD, DATABASE = "sweeper", "s3cret-pw", "sweeps"


def _postgres_bin() -> Path | None:
    """The folder of Debian's initdb and pg_ctl (newest version), or of those on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    port: int
    folder: Path

    def url(self, password: str | None = None, port: int | None = None) -> str:
        login = USER if password is None else f"{USER}:{password}"
        return f"postgresql://{login}@127.0.0.1:{port or self.port}/{DATABASE}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """A throwaway PostgreSQL cluster: initdb in a temporary folder, pg_ctl start on 127.0.0.1
    and a free port (as the postgres user when we are root), a user with a password and a
    database of its own; stopped and removed at the end."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("initdb is missing; CI is set, so the PostgreSQL tests must run")
        pytest.skip("PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="chainrule-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-h 127.0.0.1 -p {port} -k {folder}"
    subprocess.run(
        [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
         "-l", str(folder / "log"), "-w", "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        import psycopg

        with psycopg.connect(
            host=str(folder), port=port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE USER {USER} WITH PASSWORD '{PASSWORD}'")
            conn.execute(f"CREATE DATABASE {DATABASE} OWNER {USER}")
        yield Server(port, folder)
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def env() -> dict[str, str]:
    return {**os.environ, "PGPASSWORD": PASSWORD}


def load(server: Server, name: str) -> optuna.Study:
    os.environ["PGPASSWORD"] = PASSWORD
    storage = sweep_storage.open_storage(server.url(), Path("."))
    return optuna.load_study(study_name=name, storage=storage)


def counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if t.state.name in ("COMPLETE", "PRUNED")]


def test_the_server_really_runs(postgres):
    pid = int((postgres.folder / "data" / "postmaster.pid").read_text().split()[0])
    assert Path(f"/proc/{pid}").exists()
    with socket.create_connection(("127.0.0.1", postgres.port), timeout=5):
        pass


def test_two_workers_from_the_readme_join_one_study_and_the_count_adds_up(postgres, tmp_path):
    section = readme_section()
    line = next(ln for ln in section.splitlines() if "--storage postgresql://" in ln)
    args = line.removeprefix("./dev run ").replace("DBHOST", f"127.0.0.1:{postgres.port}").split()
    # the README's command as written, with small settings after it (argparse: the last wins)
    small = ["--trials", "6", "--epochs", "10", *FAST[2:6], "--quiet"]
    command = [chainrule(*args, *small, "--out", f"w{i}") for i in range(2)]
    workers = [
        subprocess.Popen(c, cwd=tmp_path, env=env(), stderr=subprocess.PIPE, text=True)
        for c in command
    ]
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err
    study = load(postgres, args[args.index("--study") + 1])
    finished = counted(study)
    assert len(finished) == 6
    numbers = [t.number for t in study.get_trials()]
    assert len(set(numbers)) == len(numbers)
    assert len({t.user_attrs["worker"] for t in finished}) == 2  # both took trials
    for i in range(2):  # each worker wrote its own results
        assert (tmp_path / f"w{i}" / "summary.json").exists()


def test_sigkill_mid_trial_then_the_same_command(postgres, tmp_path):
    args = [*FAST, "--epochs", "20", "--trials", "3", "--quiet", "--storage", postgres.url()]
    args += ["--study", "pg-kill", "--out", "sw"]
    process = subprocess.Popen(chainrule("sweep", *args), cwd=tmp_path, env=env())
    deadline = time.monotonic() + 300
    killed = None
    while killed is None and time.monotonic() < deadline:
        assert process.poll() is None
        try:
            trials = load(postgres, "pg-kill").get_trials()
        except KeyError:
            trials = []
        running = [t for t in trials if t.state.name == "RUNNING" and t.intermediate_values]
        killed = running[0].number if running and running[0].number >= 1 else None
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    done = subprocess.run(chainrule("sweep", *args), cwd=tmp_path, env=env())
    assert done.returncode == 0
    study = load(postgres, "pg-kill")
    assert study.trials[killed].state.name == "FAIL"
    assert len(counted(study)) == 3
    assert not [t for t in study.get_trials() if t.state.name == "RUNNING"]


def _refused(capsys, args: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    status = main(["sweep", *FAST, "--trials", "2", "--quiet", *args])
    return status, capsys.readouterr().err


def test_refusals_are_one_line_and_change_nothing(postgres, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    out = ["--out", str(tmp_path / "sw"), "--study", "pg-refuse"]
    assert (
        main(["sweep", *FAST, "--trials", "2", "--quiet", "--storage", postgres.url(), *out]) == 0
    )
    before = [(t.number, t.state.name, t.value) for t in load(postgres, "pg-refuse").trials]

    status, err = _refused(capsys, ["--storage", postgres.url("wrong"), *out])
    assert status == 2 and err.count("\n") == 1
    assert "refused the login" in err and "password authentication failed" in err
    assert "wrong" not in err  # the password is not shown

    dead_port = _free_port()
    status, err = _refused(capsys, ["--storage", postgres.url(port=dead_port), *out])
    assert status == 1 and err.count("\n") == 1
    assert f"cannot reach the database at postgresql://{USER}@127.0.0.1:{dead_port}" in err

    status, err = _refused(capsys, ["--storage", postgres.url(), *out, "--model", "mlp"])
    assert status == 2 and err.count("\n") == 1 and "with model 'two-layer', not 'mlp'" in err

    status, err = _refused(capsys, ["--storage", "mysql://x@127.0.0.1/db", *out])
    assert status == 2 and err.count("\n") == 1 and "no driver" in err

    after = [(t.number, t.state.name, t.value) for t in load(postgres, "pg-refuse").trials]
    assert after == before
