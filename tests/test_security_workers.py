"""Account protections across real worker processes sharing one database."""

import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from conftest import PASSWORD, Browser, csrf_of, opened, running, todo_servers


def stolen_copy(browser):
    """Return a second client holding a copy of the browser's cookies, as a thief would."""
    thief = requests.Session()
    thief.cookies.update(browser.http.cookies)
    return thief


def signed_in_on(client, urls):
    """Return, for each server, whether the client's cookie opens the list page there."""
    return [client.get(url + "/", allow_redirects=False).status_code == 200 for url in urls]


def test_throttling_holds_across_four_workers_under_concurrent_attempts(database):
    attempts = 24
    with running(todo_servers(4), database) as urls:
        Browser().register(urls[0])
        clients = [requests.Session() for _ in range(attempts)]
        tokens = [csrf_of(client.get(urls[i % 4] + "/login")) for i, client in enumerate(clients)]
        start = threading.Barrier(attempts)

        def attempt(i):
            start.wait()  # all at once, spread over the four servers
            return clients[i].post(
                urls[i % 4] + "/login",
                {"username": "alice", "password": f"guess {i}", "csrf_token": tokens[i]},
                allow_redirects=False,
            )

        with ThreadPoolExecutor(attempts) as pool:
            answers = list(pool.map(attempt, range(attempts)))
        assert Counter(answer.status_code for answer in answers) == {400: 10, 429: attempts - 10}
        assert all(1 <= int(answer.headers["Retry-After"]) <= 901 for answer in answers if answer.status_code == 429)
        for url in urls:  # now every worker refuses even the right password
            answer = Browser().login(url, "alice", PASSWORD)
            assert answer.status_code == 429 and "Retry-After" in answer.headers
        with opened(database) as db:
            assert db.execute("SELECT count(*) FROM login_failures").fetchone()[0] == 10


def test_revoked_cookie_is_refused_by_every_worker(database):
    with running(todo_servers(4), database) as urls:
        owner = Browser()
        owner.register(urls[0])
        thief = stolen_copy(owner)
        assert signed_in_on(thief, urls) == [True] * 4

        answer = owner.post(urls[1], "/account/logout-all")
        assert answer.status_code == 303 and answer.headers["Location"].endswith("/login")
        assert signed_in_on(thief, urls) == [False] * 4
        assert signed_in_on(owner.http, urls) == [False] * 4

        assert owner.login(urls[2]).status_code == 303
        thief = stolen_copy(owner)
        assert signed_in_on(thief, urls) == [True] * 4
        answer = owner.post(urls[3], "/account/password", password=PASSWORD, new_password="a new long secret")
        assert answer.status_code == 303 and answer.headers["Location"].endswith("/account")
        assert signed_in_on(owner.http, urls) == [True] * 4  # this browser stays in, on every worker
        assert signed_in_on(thief, urls) == [False] * 4
        assert Browser().login(urls[0], "alice", PASSWORD).status_code == 400
        assert Browser().login(urls[1], "alice", "a new long secret").status_code == 303


def test_behind_an_https_proxy_redirects_stay_on_https_and_the_cookie_is_secure(database):
    """The README's proxy setup: relative redirects, which the browser resolves on https://, and a Secure cookie."""
    waitress = [sys.executable, "-m", "waitress", "--listen=127.0.0.1:{port}"]
    trusting = [
        *waitress,
        "--trusted-proxy=127.0.0.1",
        "--trusted-proxy-headers=x-forwarded-proto x-forwarded-for",
        "todo:app",
    ]
    secure = {"TODO_SECURE_COOKIES": "1"}
    with running([trusting, [*waitress, "todo:app"]], database, secure) as (behind_proxy, direct):
        # Trusted or not, and whatever host a client claims, the Location names only a path.
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
        for url in (behind_proxy, direct):
            answer = requests.get(url + "/", headers=forwarded, allow_redirects=False)
            assert answer.status_code == 303 and answer.headers["Location"] == "/login"
        cookie = requests.get(behind_proxy + "/login", headers=forwarded).headers["Set-Cookie"]
        assert "secure" in cookie.lower() and "httponly" in cookie.lower()
