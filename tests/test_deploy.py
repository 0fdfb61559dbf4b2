"""The README's deploy guides, followed literally in a fresh copy of the project.

The WSGI file, the Procfile line and the systemd unit are read from README.md, so a
guide that stops working fails here. Paths the guides name (/home/you/todo, /srv/todo,
/var/lib/todo) become directories under the test's temporary directory. The PythonAnywhere and
systemd guides keep a SQLite file; the Procfile guide runs on either engine (a volume, or PostgreSQL).
"""

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import requests
from conftest import ROOT, Browser, database_environ, fill_items, free_port, sqlite_only, wait_until_serving

README = (ROOT / "README.md").read_text()
SCRIPTS = os.path.dirname(sys.executable)  # where this Python's waitress-serve and gunicorn live


def readme_section(heading):
    """Return the README's text under a `### heading`, up to the next heading."""
    return README.split(f"\n### {heading}", 1)[1].split("\n##", 1)[0]


def readme_block(heading, language):
    """Return the first fenced block of the language in that README section, as a file would hold it."""
    match = re.search(rf"^( *)```{language}\n(.*?)^\1```", readme_section(heading), re.S | re.M)
    assert match, f"no {language} block under {heading!r} in README.md"
    return textwrap.dedent(match.group(2))


def copy_project(target):
    """Copy the project as a deploy gets it (no tests, data, caches or virtualenv) and return the copy."""
    shutil.copytree(
        ROOT,
        target,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "node_modules", "data", "docs", "tests", "__pycache__", ".*_cache", ".hypothesis"
        ),
    )
    assert (target / "todo.py").exists() and not (target / "data").exists()
    return target


def clean_environment(**settings):
    """Return a process environment with none of this test run's TODO_ settings, plus the given ones."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TODO_")}
    env["PATH"] = SCRIPTS + os.pathsep + env.get("PATH", "")
    env.update(settings)
    return env


def refuses_connections(url, timeout=10):
    """Return True once nothing listens at the URL's port (polling up to timeout), else False."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.05)  # still shutting down: look again
    return False


def stop_groups(processes, urls):
    """Stop each process with everything it started (a shell's child too), as a platform stops a dyno.

    Return the URLs that still answered after a polite stop (they are then killed).
    """
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    outlived = []
    for process, url in zip(processes, urls, strict=False):
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if not refuses_connections(url):
            outlived.append(url)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever of the group is left
        process.wait()
    return outlived


@contextmanager
def serving(commands, cwd, env, log_dir, processes=None):
    """Start each argv (with {port} filled in, in argv and env) in cwd; yield base URLs; always stop them.

    The processes started are appended to `processes`, when given, so that a test can signal them.
    """
    processes, urls = [] if processes is None else processes, []
    try:
        for index, command in enumerate(commands):
            port = free_port()
            log = log_dir / f"deploy-{index}.log"
            with open(log, "wb") as output:  # a file, not a pipe: a full pipe would block the server
                process = subprocess.Popen(
                    [part.format(port=port) for part in command],
                    cwd=cwd,
                    env={key: value.format(port=port) for key, value in env.items()},
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, stopped as a whole
                )
            processes.append(process)
            urls.append(f"http://127.0.0.1:{port}")
            wait_until_serving(urls[-1], process, log)
        yield urls
    finally:
        outlived = stop_groups(processes, urls)
    assert not outlived, f"still serving after SIGTERM: {outlived}"


class BehindHttps(requests.Session):
    """A client behind the site's HTTPS front end: it keeps sending Secure cookies, though the test speaks http."""

    def send(self, request, **kwargs):
        """Send the request, then unmark the cookies it set as Secure (the Set-Cookie header keeps the flag)."""
        answer = super().send(request, **kwargs)
        for cookie in self.cookies:
            cookie.secure = False
        return answer


def https_browser(**headers):
    """Return a Browser whose requests arrive as if through HTTPS, with these extra headers."""
    browser = Browser()
    browser.http = BehindHttps()
    browser.http.headers.update(headers)
    return browser


@sqlite_only  # the guide's database is the SQLite file beside todo.py
def test_pythonanywhere_guide(tmp_path):
    """The README's WSGI file, served by four workers in two servers: one database, one key, one list."""
    project = copy_project(tmp_path / "home" / "you" / "todo")
    wsgi = readme_block("PythonAnywhere", "python")
    assert "from todo import application" in wsgi and "/home/you/todo" in wsgi
    www = tmp_path / "var" / "www"
    www.mkdir(parents=True)
    (www / "you_pythonanywhere_com_wsgi.py").write_text(wsgi.replace("/home/you/todo", str(project)))
    # Like PythonAnywhere's servers: the WSGI file's directory as the working directory, not the project.
    gunicorn = [os.path.join(SCRIPTS, "gunicorn"), "-w", "2", "--bind", "127.0.0.1:{port}"]
    command = [*gunicorn, "you_pythonanywhere_com_wsgi:application"]
    with serving([command, command], www, clean_environment(), tmp_path) as urls:
        browser = https_browser()
        answer = browser.register(urls[0], "you")
        assert "secure" in answer.headers["Set-Cookie"].lower()  # the WSGI file's setting took effect
        for number in range(1, 13):  # every add and every token read land on any of the workers
            answer = browser.post(urls[number % 2], "/items", title=f"item {number}")
            assert answer.status_code == 303, answer.text
        for url in urls:
            assert [(item["no"], item["title"]) for item in browser.export(url)] == [
                (number, f"item {number}") for number in range(1, 13)
            ]
        # The Static files mapping names the directory the site's own /static/ URLs serve.
        url_path, directory = re.search(
            r"map the URL `([^`]+)` to the directory `([^`]+)`", readme_section("PythonAnywhere")
        ).groups()
        static = project.joinpath(os.path.relpath(directory, "/home/you/todo"))
        names = sorted(path.name for path in static.iterdir())
        assert "style.css" in names
        for name in names:
            assert browser.http.get(urls[1] + url_path + name).content == (static / name).read_bytes()

    database = project / "data" / "todo.db"  # the default, beside todo.py, shared by all the workers
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM settings WHERE name = 'secret_key'").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM items").fetchone() == (12,)


def test_procfile_guide(database, tmp_path):
    """The Procfile's line with $PORT and a volume (or PostgreSQL): relative redirects, data survives a redeploy."""
    line = (ROOT / "Procfile").read_text().strip()
    assert line in readme_section("Procfile platforms")  # the README shows the real Procfile
    command = ["sh", "-c", line.removeprefix("web: ")]
    # Where the data lasts, the guide's two ways: TODO_DATABASE on a volume, or the platform's DATABASE_URL.
    lasting = database_environ(tmp_path / "volume" / "todo.db" if isinstance(database, Path) else database)
    settings = {"PORT": "{port}", **lasting, "TODO_SECURE_COOKIES": "1"}
    # The platform's router: HTTPS outside, and it says so in the headers it adds.
    browser = https_browser(**{"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9"})

    dyno = copy_project(tmp_path / "deploy-1")
    with serving([command], dyno, clean_environment(**settings), tmp_path) as (url,):
        first = browser.http.get(url + "/", allow_redirects=False)
        assert first.status_code == 303 and first.headers["Location"] == "/login"  # the browser stays on https
        assert "max-age=" in first.headers["Strict-Transport-Security"]  # behind HTTPS, by the operator's word
        answer = browser.register(url, "you")
        assert answer.headers["Location"] == "/"
        assert "secure" in answer.headers["Set-Cookie"].lower()
        assert browser.post(url, "/items", title="kept on the volume").status_code == 303

    redeploy = copy_project(tmp_path / "deploy-2")  # a fresh copy of the code, the same volume
    with serving([command], redeploy, clean_environment(**settings), tmp_path) as (url,):
        assert [item["title"] for item in browser.export(url)] == ["kept on the volume"]

    # What the README warns about: with neither, a new copy starts empty (data/todo.db, thrown away).
    ephemeral = {key: value for key, value in settings.items() if key not in lasting}
    dyno = copy_project(tmp_path / "deploy-3")
    with serving([command], dyno, clean_environment(**ephemeral), tmp_path) as (url,):
        assert browser.http.get(url + "/", allow_redirects=False).headers["Location"].endswith("/login")
    assert not (tmp_path / "deploy-2" / "data").exists()


def finishes_in_flight_on_sigterm(process, url, browser, database):
    """Signal the whole process group mid-answer, as a platform does: the answer arrives whole, the server exits 0."""
    browser.register(url, "reader")
    fill_items(database, "reader", 20_000, "item number {no} " + "x" * 60)
    answer = browser.http.get(url + "/export.json", stream=True)
    assert answer.status_code == 200
    os.killpg(process.pid, signal.SIGTERM)  # the headers are in; most of the body is not
    body = b""
    for chunk in answer.iter_content(64 * 1024):
        body += chunk
        time.sleep(0.01)  # a slow reader
    assert len(json.loads(body)["items"]) == 20_000
    assert process.wait(timeout=15) == 0, "the server itself did not exit 0"


def test_procfile_line_stops_gracefully(database, tmp_path):
    """The Procfile's line run as a platform runs it (sh -c), signalled mid-answer: the answer completes, exit 0."""
    line = (ROOT / "Procfile").read_text().strip()
    command = ["sh", "-c", line.removeprefix("web: ")]
    lasting = database_environ(tmp_path / "volume" / "todo.db" if isinstance(database, Path) else database)
    env = clean_environment(**{"PORT": "{port}", **lasting})
    dyno = copy_project(tmp_path / "dyno")
    with serving([command], dyno, env, tmp_path, processes := []) as (url,):
        browser = Browser()
        place = tmp_path / "volume" / "todo.db" if isinstance(database, Path) else database
        finishes_in_flight_on_sigterm(processes[0], url, browser, place)


def test_a_port_that_is_not_a_number_is_refused_with_a_reason(tmp_path):
    """PORT=abc, a typo in a platform's settings: a usage error that names it, not a traceback."""
    env = {**os.environ, "PORT": "abc", "TODO_DATABASE": str(tmp_path / "todo.db")}
    done = subprocess.run([sys.executable, str(ROOT / "todo.py")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "invalid int value: 'abc'" in done.stderr
    assert "Traceback" not in done.stderr


def unit_settings(unit, section="Service"):
    """Return a systemd unit section's settings as (key, value) pairs, in order (keys may repeat)."""
    body = unit.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
    return [tuple(line.split("=", 1)) for line in body.splitlines() if line.strip() and not line.startswith(("#", ";"))]


@sqlite_only  # the unit keeps a SQLite file in its StateDirectory
def test_systemd_guide(tmp_path):
    """The unit's ExecStart as written, behind an HTTPS proxy: Secure cookie, relative redirects."""
    unit = readme_block("A small server with systemd", "ini")
    settings = unit_settings(unit)
    service = dict(settings)
    assert service["WorkingDirectory"] == "/srv/todo" and service["StateDirectory"] == "todo"
    project = copy_project(tmp_path / "srv" / "todo")
    state = tmp_path / "var" / "lib" / "todo"
    state.mkdir(parents=True)  # systemd creates StateDirectory= for the service

    def here(text):
        """Return the unit's text with its paths moved under this test's directory."""
        return text.replace("/srv/todo", str(project)).replace("/var/lib/todo", str(state))

    environment = dict(value.split("=", 1) for key, value in settings if key == "Environment")
    assert environment["TODO_SECURE_COOKIES"] == "1"
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == "/srv/todo/.venv/bin/python"
    argv[0] = sys.executable  # the guide's virtualenv is this test run's
    assert argv[2:5] == ["--host", "127.0.0.1", "--port"] and argv[5] == "8080"
    argv[5] = "{port}"
    argv = [here(part) for part in argv]
    env = clean_environment(**{key: here(value) for key, value in environment.items()})

    with serving([argv], here(service["WorkingDirectory"]), env, tmp_path, processes := []) as (url,):
        # The reverse proxy on the same machine (127.0.0.1, the trusted one) forwards an HTTPS request.
        browser = https_browser(
            **{"Host": "todo.example.org", "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
        )
        first = browser.http.get(url + "/", allow_redirects=False)
        assert first.status_code == 303 and first.headers["Location"] == "/login"  # the browser stays on https
        answer = browser.register(url, "you")
        assert answer.headers["Location"] == "/"
        assert "secure" in answer.headers["Set-Cookie"].lower()
        answer = browser.post(url, "/items", title="behind the proxy")
        assert answer.status_code == 303 and answer.headers["Location"] == "/"
        assert [item["title"] for item in browser.export(url)] == ["behind the proxy"]
        # A body over the site's limit is refused by waitress itself, before the app reads it.
        big = browser.http.post(url + "/items", data={"title": "x" * 70_000}, allow_redirects=False)
        assert big.status_code == 413
        # systemctl stop or restart: SIGTERM to the unit's processes, mid-answer.
        proxied = https_browser(**{"X-Forwarded-Proto": "https"})
        finishes_in_flight_on_sigterm(processes[0], url, proxied, state / "todo.db")
    assert (state / "todo.db").exists() and not (project / "data").exists()
