"""Dates across real processes: concurrent toggles of a repeating item, a calendar address replaced on one worker."""

import re
from concurrent.futures import ThreadPoolExecutor

import requests
from conftest import Browser, running, todo_servers


def test_ten_toggles_at_once_across_four_workers_add_exactly_one_next_occurrence(database):
    """Ten clicks on one repeating item, over four servers at once: exactly one next occurrence, no click lost."""
    with running(todo_servers(4), database) as urls:
        browser = Browser()
        browser.register(urls[0])
        answer = browser.post(urls[1], "/items", title="pay rent", due="2099-01-31", repeat="monthly")
        assert answer.status_code == 303
        token, cookies = browser.token(urls[2]), browser.http.cookies.get_dict()

        def click(index):
            """Toggle item #1 on a server chosen round-robin, over a connection of its own."""
            answer = requests.post(
                urls[index % 4] + "/items/1/toggle",
                {"csrf_token": token},
                cookies=cookies,
                allow_redirects=False,
                timeout=60,
            )
            return answer.status_code

        with ThreadPoolExecutor(max_workers=10) as pool:
            assert list(pool.map(click, range(10))) == [303] * 10
        for url in urls:
            items = browser.export(url)
            assert [(item["no"], item["due"], item["repeat"]) for item in items] == [
                (1, "2099-01-31", ""),
                (2, "2099-02-28", "monthly"),
            ]
            assert items[0]["done"] is False and items[1]["done"] is False  # ten flips: back to not done


def calendar_token(browser, url):
    """Make (or replace) the calendar address on this server; return the token its account page shows once."""
    answer = browser.post(url, "/account/calendar")
    assert answer.status_code == 303
    return re.search(r'href="/calendar/([^"/]+)\.ics"', browser.http.get(url + "/account").text)[1]


def test_a_calendar_address_replaced_on_one_worker_is_refused_at_once_on_another(database):
    """Replaced through server A: the old address 404 at once on server B, the new one 200 there; off: 404 on all."""
    with running(todo_servers(2), database) as (a, b):
        browser = Browser()
        browser.register(a)
        assert browser.post(a, "/items", title="dentist", due="2027-03-04").status_code == 303
        old = calendar_token(browser, a)
        first = requests.get(f"{b}/calendar/{old}.ics", timeout=10)
        assert first.status_code == 200 and "SUMMARY:dentist" in first.text
        new = calendar_token(browser, a)
        assert requests.get(f"{b}/calendar/{old}.ics", timeout=10).status_code == 404
        answer = requests.get(f"{b}/calendar/{new}.ics", timeout=10)
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/calendar")
        assert "DTSTART;VALUE=DATE:20270304" in answer.text
        assert browser.post(b, "/account/calendar/delete").status_code == 303
        for url in (a, b):
            assert requests.get(f"{url}/calendar/{new}.ics", timeout=10).status_code == 404
