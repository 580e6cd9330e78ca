"""The server's private directory from another local user's side (issue 21, finding 2).

Everything the server writes on the host lives in one directory of its own user, mode 0700,
files 0600, with no name derived from a secret. A directory or store that another user made
first (or that others may write) is refused at start with one line naming the path and the
fix, never used: another user who pre-creates the login store controls logouts and the
login throttle.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import requests

from bokeh_flask.app.auth import logins
from bokeh_flask.app.config import state_dir
from bokeh_flask.app.runtime import handover
from tests.support.servers import APPS, BIN, IN_CI, ROOT, free_port, launch

HELLO = APPS / "hello.py"
LOGIN_SERVER = ROOT / "tests" / "auth" / "apps" / "login_server.py"
OTHER_UID = 65534


def other_user_owns(path: Path) -> None:
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("these tests run as root in CI, to make files of another user")
        pytest.skip("needs root to make a file of another user")
    os.chown(path, OTHER_UID, OTHER_UID)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    env.update(extra)
    return env


def start(command: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    port = str(free_port())
    argv = ([str(BIN / "bokeh-flask"), "serve", str(HELLO), "--port", port, *args] if command == "cli" else
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", *args, "wsgi:app"])
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**env, "BOKEH_APPS": str(HELLO)})


def one_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "Booting worker" not in done.stderr
    assert "running at" not in done.stderr
    return errors[0]


@pytest.mark.parametrize("command", ["cli", "gunicorn"])
def test_a_directory_another_user_made_first_is_refused(tmp_path, command):
    squatted = tmp_path / "state"
    squatted.mkdir(mode=0o700)
    other_user_owns(squatted)
    line = one_error(start(command, clean_env(BOKEH_FLASK_STATE_DIR=str(squatted))))
    assert line == (f"bokeh-flask: error: {squatted} belongs to uid {OTHER_UID}, not to this server's user "
                    f"(uid {os.geteuid()}): remove it (or choose another directory with --state-dir "
                    f"(BOKEH_FLASK_STATE_DIR)), so the server creates its own")
    assert os.listdir(squatted) == []


@pytest.mark.parametrize("make, problem", [
    (lambda p: (p.mkdir(), p.chmod(0o777)), "may be written by other users"),
    (lambda p: (p.parent.joinpath("elsewhere").mkdir(mode=0o700), p.symlink_to(p.parent / "elsewhere")),
     "is not a directory"),
    (lambda p: p.write_text(""), "is not a directory"),
])
def test_a_directory_that_is_not_private_is_refused(tmp_path, make, problem):
    path = tmp_path / "state"
    make(path)
    line = one_error(start("cli", clean_env(), "--state-dir", str(path)))
    assert line.startswith(f"bokeh-flask: error: {path} {problem}"), line


def test_a_login_store_another_user_made_is_refused(tmp_path):
    store = tmp_path / "logins.sqlite3"
    sqlite3.connect(store).close()
    other_user_owns(store)
    store.chmod(0o666)
    done = subprocess.run([str(BIN / "python"), "-c", "import login_server"], capture_output=True, text=True,
                          timeout=60, cwd=LOGIN_SERVER.parent,
                          env=clean_env(BOKEH_LOGIN_STORE=f"sqlite:///{store}"))
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert f"{store} belongs to uid {OTHER_UID}" in last, done.stderr[-1500:]


def test_a_login_store_others_may_write_is_refused(tmp_path):
    store = tmp_path / "logins.sqlite3"
    sqlite3.connect(store).close()
    store.chmod(0o666)
    with pytest.raises(ValueError, match="may be written by other users"):
        logins.open_store(f"sqlite:///{store}", 3600)


def test_the_default_store_lives_in_the_private_directory_with_private_modes(tmp_path):
    directory = tmp_path / "state"
    port = free_port()
    env = clean_env(BOKEH_FLASK_STATE_DIR=str(directory), PYTHONUNBUFFERED="1")
    from tests.support.servers import spawn

    server = spawn("auth-gunicorn", [str(BIN / "gunicorn"), "-k", "gevent", "-w", "2", "-b", f"127.0.0.1:{port}",
                                     "--chdir", str(LOGIN_SERVER.parent), "login_server:app"],
                   port, env, ready=lambda status: status == 200, ready_path="/health")
    try:
        session = requests.Session()
        form = session.get(server.url + "/login", timeout=10).text
        csrf = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        answer = session.post(server.url + "/login", data={"username": "alice", "password": "alice-pw",
                                                           "csrf_token": csrf}, timeout=10, allow_redirects=False)
        assert answer.status_code == 302, answer.text[:300]
    finally:
        server.stop()
    assert directory.stat().st_mode & 0o777 == 0o700
    names = sorted(os.listdir(directory))
    stores = {name for name in names if not name.endswith(("-wal", "-shm"))}
    assert stores == {"logins.sqlite3", "pending-logouts.sqlite3", "page-facts.sqlite3", "broadcasts.sqlite3"}, names
    for name in names:
        assert (directory / name).stat().st_mode & 0o777 == 0o600, name
    with sqlite3.connect(directory / "logins.sqlite3") as db:  # only digests, never the name
        assert db.execute("SELECT COUNT(*) FROM logins").fetchone()[0] == 1


def test_the_default_directory_is_the_users_runtime_directory_when_it_has_one(tmp_path):
    runtime = tmp_path / "run-user"
    runtime.mkdir(mode=0o700)
    assert _default_with(XDG_RUNTIME_DIR=str(runtime)) == str(runtime / "bokeh-flask")
    other_user_owns(runtime)  # a sudo caller's: not ours, so not used
    assert _default_with(XDG_RUNTIME_DIR=str(runtime)) == os.path.join(
        __import__("tempfile").gettempdir(), f"bokeh-flask-{os.geteuid()}")


def _default_with(**env: str) -> str:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return state_dir.default_state_dir()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_servers_with_other_secrets_share_the_file_but_not_their_records(tmp_path):
    url = f"sqlite:///{tmp_path / 'logins.sqlite3'}"
    first = logins.open_store(url, 3600, logins.namespace_for("first secret"))
    second = logins.open_store(url, 3600, logins.namespace_for("second secret"))
    login_id = first.start("alice")
    assert first.check(login_id, "alice") and not second.check(login_id, "alice")
    first.revoke("saved-cookie", 60)
    assert first.revoked("saved-cookie") and not second.revoked("saved-cookie")


def test_a_live_server_keeps_its_sockets_in_the_private_directory(tmp_path):
    directory = tmp_path / "state"
    server = launch("cli", apps=[HELLO], args=["--workers", "2", "--state-dir", str(directory)])
    try:
        deadline = time.monotonic() + 30
        while sum(name.startswith("handover-") for name in os.listdir(directory)) < 2:
            assert time.monotonic() < deadline, os.listdir(directory)
            time.sleep(0.05)
        names = sorted(os.listdir(directory))
        assert all((directory / name).stat().st_uid == os.geteuid() for name in names)
        group = handover.group_of_master(server.process.pid)
        with open("/proc/net/unix", encoding="utf-8") as table:
            assert f"@bokeh-flask-handover-{group}" not in table.read()  # no abstract name to squat
    finally:
        server.stop()
    assert not [name for name in os.listdir(directory) if name.endswith(".sock")]  # the master removed them
