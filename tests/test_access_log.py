"""The access log of a real `python todo.py`: one line per request on stderr, none with --quiet."""

import re
import socket
import sys
import time

import requests
from conftest import ROOT, running

LINE = re.compile(r"^(?P<remote>\S+) (?P<method>\S+) (?P<path>\S+) (?P<status>\d{3}) (?P<ms>\d+\.\d)ms$")


def serve(*options):
    """Return the argv of one `python todo.py` server with these options, on {port}."""
    return [[sys.executable, str(ROOT / "todo.py"), "--port", "{port}", *options]]


def request_lines(log):
    """Return the access-log lines in a server's log, leaving out waitress' own and the readiness checks'."""
    return [line for line in log.read_text().splitlines() if not line.startswith("waitress") and "/healthz" not in line]


def wait_for_lines(log, count, timeout=10):
    """Return the log's request lines once there are `count` (a line is written just after its answer)."""
    deadline = time.monotonic() + timeout
    while len(lines := request_lines(log)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} request lines, got:\n{log.read_text()}")
        time.sleep(0.02)
    return lines


def raw_get(url, target):
    """Send a GET with an exact request target (no client-side quoting) and return the status line."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return sock.makefile("rb").readline().decode()


def test_one_line_per_request_with_method_path_status_duration_and_address(database, tmp_path):
    """Each request, whatever its answer, gives one parseable line naming what was asked and how it went."""
    with running(serve(), database, log_dir=tmp_path) as (url,):
        log = tmp_path / "server-0.log"
        requests.get(url + "/login")
        requests.get(url + "/static/style.css")
        requests.post(url + "/items", {"title": "x"}, allow_redirects=False)  # no token: 403
        requests.get(url + "/no/such/page")
        requests.get(url + "/", allow_redirects=False)
        lines = wait_for_lines(log, 5)
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    # Written just after each answer, by several threads: in any order.
    assert sorted((p["remote"], p["method"], p["path"], p["status"]) for p in parsed) == sorted(
        [
            ("127.0.0.1", "GET", "/login", "200"),
            ("127.0.0.1", "GET", "/static/style.css", "200"),
            ("127.0.0.1", "POST", "/items", "403"),
            ("127.0.0.1", "GET", "/no/such/page", "404"),
            ("127.0.0.1", "GET", "/", "303"),
        ]
    )
    assert all(0 < float(p["ms"]) < 10_000 for p in parsed)


def test_a_path_cannot_forge_log_lines(database, tmp_path):
    """An encoded newline or space in a path stays inside its one line, escaped."""
    with running(serve(), database, log_dir=tmp_path) as (url,):
        log = tmp_path / "server-0.log"
        assert " 404 " in raw_get(url, "/x%0A10.0.0.1%20GET%20/admin%20200%201.0ms")
        assert " 404 " in raw_get(url, "/caf%C3%A9")
        lines = wait_for_lines(log, 2)
    assert len(lines) == 2, lines
    assert all(LINE.match(line) for line in lines), lines
    assert {LINE.match(line)["path"] for line in lines} == {"/x%0A10.0.0.1%20GET%20/admin%20200%201.0ms", "/caf%C3%A9"}


def test_quiet_writes_no_access_log(database, tmp_path):
    """With --quiet, requests leave no line (once the server has stopped, everything it wrote is there)."""
    with running(serve("--quiet"), database, log_dir=tmp_path) as (url,):
        assert requests.get(url + "/login").status_code == 200
        assert requests.get(url + "/nope").status_code == 404
    log = (tmp_path / "server-0.log").read_text()
    assert "Serving on" in log  # the server did write, just no request lines
    assert "/login" not in log and "/nope" not in log and "/healthz" not in log


def test_a_calendar_address_is_logged_without_its_secret_token(database, tmp_path):
    """The calendar's address is its only key: the log names the request, never the token in it."""
    with running(serve(), database, log_dir=tmp_path) as (url,):
        log = tmp_path / "server-0.log"
        browser = requests.Session()
        form = browser.get(url + "/register").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
        browser.post(url + "/register", {"csrf_token": token, "username": "alice", "password": "correct horse 1"})
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get(url + "/account").text)[1]  # a new one
        shown = browser.post(url + "/account/calendar", {"csrf_token": token}).text  # the account page, once
        calendar = re.search(r'href="(/calendar/[^"]+\.ics)"', shown)[1]
        secret = calendar.removeprefix("/calendar/").removesuffix(".ics")
        assert browser.get(url + calendar).status_code == 200
        assert requests.get(url + "/calendar/not-a-real-token.ics").status_code == 404
        lines = wait_for_lines(log, 7)
    assert secret not in log.read_text() and "not-a-real-token" not in log.read_text()
    calendar_lines = [LINE.match(line) for line in lines if "/calendar/" in line]
    assert sorted((p["path"], p["status"]) for p in calendar_lines) == [
        ("/calendar/(secret).ics", "200"),
        ("/calendar/(secret).ics", "404"),
    ]
