"""Due dates, repeats, "today" in each user's time zone, /today and the calendar address (SPEC "Dates")."""

import calendar
import hashlib
import os
import random
import re
import secrets
import subprocess
import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from conftest import ROOT, database_environ, fill_items, new_list, opened, post, register, share, sqlite_only

import todo

KIRITIMATI, PAGO_PAGO = "Pacific/Kiritimati", "Pacific/Pago_Pago"  # UTC+14 and UTC-11: 25 hours apart


# --- Helpers -------------------------------------------------------------------


def today_in(zone):
    """Return today's date in a time zone, read from the clock now."""
    return datetime.now(ZoneInfo(zone)).date()


def whatever_the_hour(check, *zones):
    """Run check(today in each zone); again if a midnight in one of the zones passed while it ran."""
    while True:
        todays = [today_in(zone) for zone in zones]
        try:
            result = check(*todays)
        except AssertionError:
            if [today_in(zone) for zone in zones] == todays:
                raise  # a real failure, not a day that changed under the test
            continue
        if [today_in(zone) for zone in zones] == todays:
            return result


def base_of(list_id):
    """Return the address prefix of a list's routes: "" means the first list."""
    return f"/lists/{list_id}" if list_id else ""


def items_of(app, list_id=None):
    """Return a list's items as its export gives them."""
    return app.get(f"{base_of(list_id)}/export.json").json["items"]


def item_of(app, no, list_id=None):
    """Return one item of a list as the export gives it."""
    return next(item for item in items_of(app, list_id) if item["no"] == no)


def add(app, title, due="", repeat="", list_id=None):
    """Add an item with a due date and repeat through the form; return its number."""
    answer = post(app, f"{base_of(list_id)}/items", title=title, due=due, repeat=repeat)
    assert answer.status_int == 303, answer.text
    return max(item["no"] for item in items_of(app, list_id))


def toggle(app, no, list_id=None, **fields):
    """Click an item's toggle; return the answer."""
    return post(app, f"{base_of(list_id)}/items/{no}/toggle", **fields)


def set_timezone(app, zone):
    """Choose the user's time zone on the account page."""
    answer = post(app, "/account/timezone", timezone=zone)
    assert answer.status_int == 303 and answer.headers["Location"].endswith("/account"), answer.text


def user(make_app, username, zone=None):
    """Return a new in-process browser signed in as a new user, in a time zone of their own if given."""
    app = make_app()
    register(app, username)
    if zone:
        set_timezone(app, zone)
    return app


def shown(page):
    """Return the items a list page or /today shows, in order: list, no, classes, date, words, toggle."""
    rows = []
    for element in page.html.select("li[data-no]"):
        time = element.find("time")
        rows.append(
            {
                "list": int(element["data-list"]) if element.has_attr("data-list") else None,
                "no": int(element["data-no"]),
                "classes": set(element.get("class", [])),
                "datetime": time["datetime"] if time else None,
                "when": time.get_text(strip=True) if time else None,
                "title": element.select_one(".title").get_text(),
                "text": " ".join(element.get_text(" ").split()),
                "toggle": element.select_one("button.toggle")["formaction"],
            }
        )
    return rows


def shown_item(page, no):
    """Return what a list page shows of item #no."""
    return next(row for row in shown(page) if row["no"] == no)


def readable(day, today):
    """Return how SPEC's pages write a date: today, tomorrow, "Tue 8 Dec" (with the year if not this one)."""
    days = (day - today).days
    if days < 0:
        return f"{-days} day{'s' if days < -1 else ''} overdue"
    if days < 2:
        return ("today", "tomorrow")[days]
    return f"{day:%a} {day.day} {day:%b}" + ("" if day.year == today.year else f" {day.year}")


def shifted(start, repeat, periods):
    """Return start plus whole periods, a month's day clamped to the month's last: SPEC's rule, done by hand."""
    if repeat in ("daily", "weekly"):
        return start + timedelta(days=periods * (1 if repeat == "daily" else 7))
    months = start.month - 1 + periods * (1 if repeat == "monthly" else 12)
    year, month = start.year + months // 12, months % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def expected_next(due, repeat, today):
    """Return the first date one or more whole periods after due that is today or later (no shortcuts)."""
    periods = 1
    while shifted(due, repeat, periods) < today:
        periods += 1
    return shifted(due, repeat, periods)


# --- The next date: the rule itself ------------------------------------------------

RULES = [
    # (due, repeat, today, next)
    ("2027-01-05", "daily", "2027-01-01", "2027-01-06"),  # done early: one period later
    ("2027-01-05", "daily", "2027-01-05", "2027-01-06"),  # done on the day
    ("2020-01-01", "daily", "2027-01-05", "2027-01-05"),  # late: today
    ("2027-01-05", "weekly", "2027-01-01", "2027-01-12"),
    ("2027-06-15", "weekly", "2027-01-01", "2027-06-22"),  # early by months: still one week later
    ("2020-01-06", "weekly", "2026-12-06", "2026-12-07"),  # a Monday, done on a Sunday years later: next Monday
    ("2020-01-06", "weekly", "2026-12-07", "2026-12-07"),  # ... done on a Monday: that very day
    ("2020-01-06", "weekly", "2026-12-08", "2026-12-14"),
    ("2027-01-15", "monthly", "2027-01-01", "2027-02-15"),
    ("2027-01-31", "monthly", "2027-01-01", "2027-02-28"),  # the month is shorter: its last day
    ("2028-01-31", "monthly", "2028-01-01", "2028-02-29"),  # a leap year
    ("2027-02-28", "monthly", "2027-02-01", "2027-03-28"),  # from 28 February: 28 March
    ("2027-03-31", "monthly", "2027-03-01", "2027-04-30"),
    ("2027-01-31", "monthly", "2027-04-30", "2027-04-30"),  # late: catches up, the last day of a short month
    ("2027-01-31", "monthly", "2027-05-01", "2027-05-31"),  # ... and keeps the 31st where the month has it
    ("2026-12-31", "monthly", "2026-12-01", "2027-01-31"),  # across the year's end
    ("2027-03-01", "yearly", "2027-01-01", "2028-03-01"),
    ("2032-02-29", "yearly", "2032-01-01", "2033-02-28"),  # 29 February: 28 February
    ("2020-07-04", "yearly", "2026-12-06", "2027-07-04"),  # late by years
    ("2020-07-04", "yearly", "2026-07-04", "2026-07-04"),
]


@pytest.mark.parametrize("due, repeat, today, expected", RULES)
def test_next_due_follows_every_rule_of_spec(due, repeat, today, expected):
    """next_due gives one period after the due date, repeated until today or later, months clamped."""
    assert todo.next_due(due, repeat, date.fromisoformat(today)) == expected


def test_next_due_agrees_with_the_rule_done_by_hand_on_a_thousand_dates():
    """Random due dates, repeats and days of doing: always the first whole-period date that is today or later."""
    chance = random.Random(2026)
    for _ in range(1000):
        due = date(2000, 1, 1) + timedelta(days=chance.randrange(40_000))
        today = due + timedelta(days=chance.randrange(-400, 3000))
        repeat = chance.choice(["daily", "weekly", "monthly", "yearly"])
        expected = expected_next(due, repeat, today)
        assert todo.next_due(due.isoformat(), repeat, today) == expected.isoformat(), (due, repeat, today)


def test_next_due_past_the_year_9999_is_none():
    """No next occurrence can be written past 9999-12-31: none is made, rather than a crash."""
    assert todo.next_due("9999-12-31", "daily", date(9999, 12, 31)) is None
    assert todo.next_due("9999-02-01", "yearly", date(9999, 1, 1)) is None


# --- The next date: through the site ---------------------------------------------

SITE_RULES = [  # due in the future (whatever today is): exactly one period later
    ("2099-01-05", "daily", "2099-01-06"),
    ("2099-01-05", "weekly", "2099-01-12"),
    ("2099-01-15", "monthly", "2099-02-15"),
    ("2099-01-31", "monthly", "2099-02-28"),
    ("2096-01-31", "monthly", "2096-02-29"),
    ("2099-02-28", "monthly", "2099-03-28"),
    ("2099-03-01", "yearly", "2100-03-01"),
    ("2032-02-29", "yearly", "2033-02-28"),
]


@pytest.mark.parametrize("due, repeat, expected", SITE_RULES)
def test_toggling_a_repeating_item_adds_its_next_occurrence(alice, due, repeat, expected):
    """Marking it done adds the same title and repeat, the list's next number, due one period later, not done."""
    add(alice, "first")
    no = add(alice, "water the plants", due, repeat)
    post(alice, "/items/1/delete")  # numbers are never reused: the next is still the counter's
    assert toggle(alice, no).status_int == 303
    assert [(item["no"], item["title"], item["done"], item["due"], item["repeat"]) for item in items_of(alice)] == [
        (2, "water the plants", True, due, ""),
        (3, "water the plants", False, expected, repeat),
    ]


def test_monthly_from_31_january_goes_to_28_february_then_28_march(alice):
    """The chain: 31 January, then 28 February (a non-leap year), and from that item 28 March."""
    add(alice, "rent", "2099-01-31", "monthly")
    toggle(alice, 1)
    toggle(alice, 2)
    assert [(item["no"], item["due"], item["done"], item["repeat"]) for item in items_of(alice)] == [
        (1, "2099-01-31", True, ""),
        (2, "2099-02-28", True, ""),
        (3, "2099-03-28", False, "monthly"),
    ]


@pytest.mark.parametrize(
    "due, repeat",
    [("2020-01-01", "daily"), ("2020-01-06", "weekly"), ("2020-01-31", "monthly"), ("2020-02-29", "yearly")],
)
def test_done_late_after_a_long_absence_the_next_occurrence_catches_up_to_today(alice, due, repeat):
    """Years late: the first whole period after the due date that is today or later, in the user's time zone."""
    set_timezone(alice, KIRITIMATI)

    def check(today):
        no = add(alice, f"{repeat} chore", due, repeat)
        toggle(alice, no)
        following = item_of(alice, no + 1)
        start = date.fromisoformat(due)
        assert following["due"] == expected_next(start, repeat, today).isoformat()
        assert today <= date.fromisoformat(following["due"]) < shifted(today, repeat, 1)  # no period skipped
        if repeat == "weekly":
            assert date.fromisoformat(following["due"]).weekday() == start.weekday() == 0  # a Monday still
        if repeat == "daily":
            assert following["due"] == today.isoformat()

    whatever_the_hour(check, KIRITIMATI)


def test_the_done_item_keeps_its_date_and_toggling_it_back_and_forth_adds_nothing_more(alice):
    """Done, not done, done, not done: one next occurrence in all, and the first item keeps its due date."""
    add(alice, "vacuum", "2099-05-10", "weekly")
    for _ in range(4):
        assert toggle(alice, 1).status_int == 303
    assert [(item["no"], item["due"], item["done"], item["repeat"]) for item in items_of(alice)] == [
        (1, "2099-05-10", False, ""),
        (2, "2099-05-17", False, "weekly"),
    ]


def test_an_item_with_a_date_but_no_repeat_adds_nothing_when_done(alice):
    """Only repeating items have a next occurrence."""
    add(alice, "dentist", "2099-05-10")
    toggle(alice, 1)
    assert [(item["no"], item["due"], item["done"]) for item in items_of(alice)] == [(1, "2099-05-10", True)]


def test_toggle_all_adds_each_repeating_items_next_occurrence_with_the_lists_next_numbers(alice):
    """Mark all as done: every item done, and one next occurrence for each repeating one, numbered in turn."""
    work = new_list(alice, "Work")
    add(alice, "no date", list_id=work)
    add(alice, "report", "2099-01-05", "daily", list_id=work)
    add(alice, "done already", "2020-01-01", list_id=work)
    toggle(alice, 3, work)
    add(alice, "invoice", "2099-01-31", "monthly", list_id=work)
    add(alice, "plain date", "2099-01-31", list_id=work)
    add(alice, "standup", "2099-03-01", "weekly", list_id=work)
    add(alice, "elsewhere", "2099-01-01", "daily")  # another list: untouched
    assert post(alice, f"/lists/{work}/items/2/edit", title="report").status_int == 303  # a row rewritten last
    answer = post(alice, f"/lists/{work}/items/toggle-all", back=f"/lists/{work}")
    assert answer.status_int == 303 and answer.headers["Location"].endswith(f"/lists/{work}")
    assert [
        (item["no"], item["title"], item["done"], item["due"], item["repeat"]) for item in items_of(alice, work)
    ] == [
        (1, "no date", True, None, ""),
        (2, "report", True, "2099-01-05", ""),
        (3, "done already", True, "2020-01-01", ""),
        (4, "invoice", True, "2099-01-31", ""),
        (5, "plain date", True, "2099-01-31", ""),
        (6, "standup", True, "2099-03-01", ""),
        (7, "report", False, "2099-01-06", "daily"),
        (8, "invoice", False, "2099-02-28", "monthly"),
        (9, "standup", False, "2099-03-08", "weekly"),
    ]
    assert [(item["done"], item["repeat"]) for item in items_of(alice)] == [(False, "daily")]


def test_toggle_from_today_adds_the_next_occurrence_and_goes_back_to_today(alice):
    """POST a list's toggle with back=/today: 303 to /today, the next occurrence due today shows there instead."""
    set_timezone(alice, PAGO_PAGO)
    home = new_list(alice, "Home")

    def check(today):
        no = add(alice, "feed the cat", "2020-01-01", "daily", list_id=home)
        (row,) = [row for row in shown(alice.get("/today")) if (row["list"], row["no"]) == (home, no)]
        assert row["toggle"] == f"/lists/{home}/items/{no}/toggle" and "overdue" in row["classes"]
        answer = toggle(alice, no, home, back="/today")
        assert answer.status_int == 303 and answer.headers["Location"].endswith("/today")
        following = item_of(alice, no + 1, home)
        assert (following["due"], following["repeat"], following["done"]) == (today.isoformat(), "daily", False)
        rows = [row for row in shown(alice.get("/today")) if row["no"] in (no, no + 1)]
        assert [(row["list"], row["no"], row["datetime"], row["when"]) for row in rows] == [
            (home, no + 1, str(today), "today")
        ]
        assert "overdue" not in rows[0]["classes"]

    whatever_the_hour(check, PAGO_PAGO)


# --- Due validation ------------------------------------------------------------------

BAD_DUES = ["2027-1-5", "20270105", "tomorrow", "2027-02-30", "2027-13-01", "0000-01-01", "27-01-05", "2027-01-05x"]


@pytest.mark.parametrize("due", BAD_DUES)
def test_add_with_a_due_that_is_not_a_real_yyyy_mm_dd_is_400_and_adds_nothing(alice, due):
    """One item or several: 400, the form again with the reason, no item added."""
    add(alice, "kept", "2027-01-05")
    before = items_of(alice)
    for fields in ({"title": "new"}, {"titles": "one\ntwo"}):
        answer = post(alice, "/items", due=due, **fields)
        assert answer.status_int == 400
        assert "YYYY-MM-DD" in answer.text and answer.html.select_one("form input[name=due]")["value"] == due
    assert items_of(alice) == before


@pytest.mark.parametrize("due", BAD_DUES)
def test_edit_with_a_due_that_is_not_a_real_yyyy_mm_dd_is_400_and_changes_nothing(alice, due):
    """The edit form again with the reason; the title, date and repeat stay as they were."""
    add(alice, "kept", "2027-01-05", "weekly")
    before = items_of(alice)
    answer = post(alice, "/items/1/edit", title="changed", due=due, repeat="daily")
    assert answer.status_int == 400 and "YYYY-MM-DD" in answer.text
    assert items_of(alice) == before


@pytest.mark.parametrize("repeat", ["fortnightly", "Weekly", "every day", "1"])
def test_an_unknown_repeat_is_400_and_changes_nothing(alice, repeat):
    """Repeat is empty, daily, weekly, monthly or yearly; anything else is refused on add and on edit."""
    add(alice, "kept", "2027-01-05")
    before = items_of(alice)
    answer = post(alice, "/items", title="new", due="2027-01-05", repeat=repeat)
    assert answer.status_int == 400 and "daily, weekly, monthly, yearly" in answer.text
    answer = post(alice, "/items/1/edit", title="kept", repeat=repeat)
    assert answer.status_int == 400 and "daily, weekly, monthly, yearly" in answer.text
    assert items_of(alice) == before


def test_a_repeat_without_a_due_date_is_400_and_changes_nothing(alice):
    """Adding a repeating item without a date, or giving one a repeat, or taking its date away: 400."""
    add(alice, "dated", "2027-01-05", "weekly")
    add(alice, "undated")
    before = items_of(alice)
    for path, fields in [
        ("/items", {"title": "new", "repeat": "daily"}),
        ("/items", {"title": "new", "due": "", "repeat": "daily"}),
        ("/items/2/edit", {"title": "undated", "repeat": "daily"}),
        ("/items/1/edit", {"title": "dated", "due": ""}),  # repeat not sent: it keeps weekly, which needs a date
    ]:
        answer = post(alice, path, **fields)
        assert answer.status_int == 400 and "needs a due date" in answer.text, (path, fields)
    assert items_of(alice) == before


def test_an_edit_that_does_not_send_due_or_repeat_keeps_them(alice):
    """A form without the fields (an older page, a script) changes the title only; one without repeat keeps it."""
    add(alice, "pay rent", "2027-01-31", "monthly")
    assert post(alice, "/items/1/edit", title="pay the rent").status_int == 303
    assert item_of(alice, 1) | {"created": None} == {
        "no": 1,
        "title": "pay the rent",
        "done": False,
        "created": None,
        "due": "2027-01-31",
        "repeat": "monthly",
    }
    assert post(alice, "/items/1/edit", title="pay the rent", due="2027-02-01").status_int == 303
    assert (item_of(alice, 1)["due"], item_of(alice, 1)["repeat"]) == ("2027-02-01", "monthly")
    assert post(alice, "/items/1/edit", title="pay the rent", repeat="yearly").status_int == 303
    assert (item_of(alice, 1)["due"], item_of(alice, 1)["repeat"]) == ("2027-02-01", "yearly")


def test_an_edit_with_an_empty_due_clears_the_date(alice):
    """due="" takes the date away (with repeat="" too when the item repeated)."""
    add(alice, "someday", "2027-01-05")
    add(alice, "weekly", "2027-01-05", "weekly")
    assert post(alice, "/items/1/edit", title="someday", due="").status_int == 303
    assert post(alice, "/items/2/edit", title="weekly", due="", repeat="").status_int == 303
    assert [(item["due"], item["repeat"]) for item in items_of(alice)] == [(None, ""), (None, "")]
    assert shown_item(alice.get("/"), 1)["datetime"] is None


def test_the_add_and_edit_forms_have_a_date_input_and_a_repeat_choice(alice):
    """Both add forms and the edit form send due (input type=date) and repeat; the edit form shows the item's."""
    page = alice.get("/")
    forms = page.html.select('form[action="/items"]')
    assert len(forms) == 2
    for form in forms:
        assert form.select_one("input[name=due]")["type"] == "date"
        options = [option.get("value") for option in form.select("select[name=repeat] option")]
        assert options == ["", "daily", "weekly", "monthly", "yearly"]
    add(alice, "rent", "2027-01-31", "monthly")
    edit = alice.get("/items/1/edit").html.select_one('form[action="/items/1/edit"]')
    assert edit.select_one("input[name=due]")["type"] == "date"
    assert edit.select_one("input[name=due]")["value"] == "2027-01-31"
    assert edit.select_one("select[name=repeat] option[selected]")["value"] == "monthly"


# --- Pages -------------------------------------------------------------------------


def test_the_list_page_shows_readable_dates_and_marks_overdue_items(alice):
    """today, tomorrow, "Tue 8 Dec", "3 days overdue" in <time datetime>; overdue class and word on not-done items."""
    set_timezone(alice, "Europe/Paris")

    def check(today):
        days = {"minus3": -3, "minus1": -1, "today": 0, "plus1": 1, "plus3": 3}
        numbers = {name: add(alice, name, str(today + timedelta(days=offset))) for name, offset in days.items()}
        far, undated = add(alice, "far", "2099-12-08"), add(alice, "undated")
        done = add(alice, "done late", "2020-01-01")
        toggle(alice, done)
        page = alice.get("/")
        rows = {row["no"]: row for row in shown(page)}
        assert rows[numbers["minus3"]]["when"] == "3 days overdue"
        assert rows[numbers["minus1"]]["when"] == "1 day overdue"
        assert rows[numbers["today"]]["when"] == "today"
        assert rows[numbers["plus1"]]["when"] == "tomorrow"
        plus3 = today + timedelta(days=3)
        assert rows[numbers["plus3"]]["when"] == readable(plus3, today)
        weekday_style = r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2}( \d{4})?"
        assert re.fullmatch(weekday_style, rows[numbers["plus3"]]["when"])
        assert rows[far]["when"] == "Tue 8 Dec 2099"
        for name, offset in days.items():
            row = rows[numbers[name]]
            assert row["datetime"] == str(today + timedelta(days=offset))
            assert ("overdue" in row["classes"]) == (offset < 0) == ("overdue" in row["text"]), name
        assert rows[far]["datetime"] == "2099-12-08" and "overdue" not in rows[far]["classes"]
        assert rows[undated]["datetime"] is None and "overdue" not in rows[undated]["classes"]
        assert rows[done]["datetime"] == "2020-01-01" and "completed" in rows[done]["classes"]
        assert "overdue" not in rows[done]["classes"] and "overdue" not in rows[done]["text"]
        post(alice, "/items/clear-completed")
        for no in rows:
            post(alice, f"/items/{no}/delete")

    whatever_the_hour(check, "Europe/Paris")


def test_today_lists_every_not_done_item_due_today_or_earlier_in_lists_owned_or_shared(make_app):
    """Owned and shared lists, earliest first, data-list and data-no, forms on the item's own list; never others'."""
    attempts = iter(range(100))

    def check(today):
        attempt = next(attempts)  # new accounts each time: a retry starts clean
        alice, bob, carol = (user(make_app, f"{name}{attempt}") for name in ("alice", "bob", "carol"))
        first = alice.get("/export.json").json["lists"][0]["id"]
        work, bobs, carols = new_list(alice, "Work"), new_list(bob, "Bob's"), new_list(carol, "Carol's")
        share(bob, bobs, f"alice{attempt}")
        share(carol, carols, f"bob{attempt}")  # shared with someone else, never with alice
        add(alice, "a late", "2020-01-01")
        add(alice, "a today", str(today))
        add(alice, "a tomorrow", str(today + timedelta(days=1)))
        add(alice, "a undated")
        toggle(alice, add(alice, "a done", "2019-01-01"))
        add(alice, "w late", "2021-06-01", list_id=work)
        add(bob, "b late", "2020-06-01", list_id=bobs)
        add(bob, "b today", str(today), "weekly", list_id=bobs)
        add(carol, "c late", "2019-01-01", list_id=carols)
        rows = shown(alice.get("/today"))
        assert [row["title"] for row in rows] == ["a late", "b late", "w late", "a today", "b today"]
        assert [(row["list"], row["no"]) for row in rows] == [(first, 1), (bobs, 1), (work, 1), (first, 2), (bobs, 2)]
        for row in rows:
            assert row["toggle"] == f"/lists/{row['list']}/items/{row['no']}/toggle"
        assert [row["datetime"] for row in rows] == ["2020-01-01", "2020-06-01", "2021-06-01", str(today), str(today)]
        assert [("overdue" in row["classes"]) for row in rows] == [True, True, True, False, False]
        assert all(("overdue" in row["text"]) == ("overdue" in row["classes"]) for row in rows)
        # bob takes alice off his list: its items leave her /today at the next request
        assert post(bob, f"/lists/{bobs}/members/remove", username=f"alice{attempt}").status_int == 303
        assert [(row["list"], row["no"]) for row in shown(alice.get("/today"))] == [(first, 1), (work, 1), (first, 2)]

    whatever_the_hour(check, "UTC")


def test_every_page_links_to_today_in_its_header(alice):
    """The header's "Today" link, on the list, its filters, the lists, a list, an item's edit form, /today, /account."""
    other = new_list(alice, "Other")
    add(alice, "one")
    for path in ["/", "/active", "/completed", "/lists", f"/lists/{other}", "/items/1/edit", "/today", "/account"]:
        link = alice.get(path).html.select_one('header a[href="/today"]')
        assert link is not None and link.get_text(strip=True) == "Today", path


# --- Time zones ------------------------------------------------------------------


def test_today_is_each_users_own_kiritimati_and_pago_pago_25_hours_apart(app, make_app):
    """Due on Kiritimati's today: "today" there, the future in Pago Pago; on Pago Pago's yesterday: overdue for both."""
    kiri = app
    register(kiri, "kiri")
    set_timezone(kiri, KIRITIMATI)
    pago = user(make_app, "pago", PAGO_PAGO)
    shared = new_list(kiri, "Shared")
    share(kiri, shared, "pago")

    def check(kiri_today, pago_today):
        assert (kiri_today - pago_today).days in (1, 2)  # 25 hours apart: one day, or two in Pago Pago's last hour
        ahead = add(kiri, "due on Kiritimati's today", str(kiri_today), list_id=shared)
        behind = add(kiri, "due on Pago Pago's yesterday", str(pago_today - timedelta(days=1)), list_id=shared)
        kiri_rows = {row["no"]: row for row in shown(kiri.get(f"/lists/{shared}"))}
        pago_rows = {row["no"]: row for row in shown(pago.get(f"/lists/{shared}"))}
        assert kiri_rows[ahead]["when"] == "today" and "overdue" not in kiri_rows[ahead]["classes"]
        future = pago_rows[ahead]["when"]
        assert future == ("tomorrow" if (kiri_today - pago_today).days == 1 else readable(kiri_today, pago_today))
        assert "overdue" not in pago_rows[ahead]["classes"] and future != "today"
        assert pago_rows[behind]["when"] == "1 day overdue" and "overdue" in pago_rows[behind]["classes"]
        late = (kiri_today - pago_today).days + 1
        assert kiri_rows[behind]["when"] == f"{late} days overdue" and "overdue" in kiri_rows[behind]["classes"]
        assert [row["no"] for row in shown(kiri.get("/today")) if row["no"] in (ahead, behind)] == [behind, ahead]
        assert [row["no"] for row in shown(pago.get("/today")) if row["no"] in (ahead, behind)] == [behind]
        for no in (ahead, behind):
            post(kiri, f"/lists/{shared}/items/{no}/delete")

    whatever_the_hour(check, KIRITIMATI, PAGO_PAGO)


def test_post_timezone_sets_where_today_is(alice, database):
    """303 to /account, the choice is kept and shown, and the list's "today" follows it."""
    add(alice, "due on Kiritimati's today")

    def check(kiri_today, pago_today):
        assert post(alice, "/items/1/edit", title="x", due=str(kiri_today)).status_int == 303
        set_timezone(alice, KIRITIMATI)
        assert alice.get("/account").html.select_one("select[name=timezone] option[selected]").text == KIRITIMATI
        assert shown_item(alice.get("/"), 1)["when"] == "today"
        set_timezone(alice, PAGO_PAGO)
        assert alice.get("/account").html.select_one("select[name=timezone] option[selected]").text == PAGO_PAGO
        assert shown_item(alice.get("/"), 1)["when"] == readable(kiri_today, pago_today) != "today"

    whatever_the_hour(check, KIRITIMATI, PAGO_PAGO)
    with opened(database) as db:
        assert db.execute("SELECT timezone FROM users WHERE username = 'alice'").fetchone()[0] == PAGO_PAGO


@pytest.mark.parametrize("zone", ["Not/AZone", "", "europe/paris", "../../etc/passwd", "UTC+3", "Europe"])
def test_an_unknown_time_zone_is_400_and_changes_nothing(alice, database, zone):
    """Only an IANA name this machine knows; the user's zone stays as it was."""
    set_timezone(alice, "Asia/Tokyo")
    answer = post(alice, "/account/timezone", timezone=zone)
    assert answer.status_int == 400 and "IANA" in answer.text
    with opened(database) as db:
        assert db.execute("SELECT timezone FROM users WHERE username = 'alice'").fetchone()[0] == "Asia/Tokyo"


def test_todo_timezone_is_the_default_for_users_without_one(make_app):
    """The same user, seen by a Kiritimati site and a Pago Pago site, until they choose a zone of their own."""
    in_kiri, in_pago = make_app(TODO_TIMEZONE=KIRITIMATI), make_app(TODO_TIMEZONE=PAGO_PAGO)
    register(in_kiri)
    for cookie in in_kiri.cookiejar:
        in_pago.cookiejar.set_cookie(cookie)

    def check(kiri_today, pago_today):
        no = add(in_kiri, "due on Kiritimati's today", str(kiri_today))
        assert shown_item(in_kiri.get("/"), no)["when"] == "today"
        assert shown_item(in_pago.get("/"), no)["when"] == readable(kiri_today, pago_today) != "today"
        assert [row["no"] for row in shown(in_kiri.get("/today")) if row["no"] == no] == [no]
        assert [row["no"] for row in shown(in_pago.get("/today")) if row["no"] == no] == []
        post(in_kiri, f"/items/{no}/delete")

    whatever_the_hour(check, KIRITIMATI, PAGO_PAGO)
    set_timezone(in_kiri, PAGO_PAGO)  # the user's own zone wins over the site's

    def own_zone(kiri_today, pago_today):
        no = add(in_kiri, "due on Kiritimati's today", str(kiri_today))
        assert shown_item(in_kiri.get("/"), no)["when"] == readable(kiri_today, pago_today) != "today"
        post(in_kiri, f"/items/{no}/delete")

    whatever_the_hour(own_zone, KIRITIMATI, PAGO_PAGO)


def test_an_unknown_todo_timezone_refuses_to_start_with_one_line(database):
    """TODO_TIMEZONE=Not/AZone: create_app raises SystemExit with one line naming the setting."""
    with pytest.raises(SystemExit) as stopped:
        todo.create_app({**database_environ(database), "TODO_TIMEZONE": "Not/AZone"})
    message = str(stopped.value.code)
    assert "TODO_TIMEZONE" in message and "Not/AZone" in message and "\n" not in message


def test_time_zones_work_without_a_system_time_zone_database(tmp_path):
    """With PYTHONTZPATH on an empty directory, the tzdata package supplies the zones: import, names, offsets."""
    empty = tmp_path / "no-zoneinfo"
    empty.mkdir()
    code = (
        "import zoneinfo, datetime, todo;"
        f"assert zoneinfo.TZPATH == ({str(empty)!r},), zoneinfo.TZPATH;"
        "summer = datetime.datetime(2027, 7, 1, 12);"
        "print('Europe/Paris' in todo.time_zones(), len(todo.time_zones()) > 400,"
        " summer.replace(tzinfo=zoneinfo.ZoneInfo('Europe/Paris')).utcoffset(),"
        " summer.replace(tzinfo=zoneinfo.ZoneInfo('Pacific/Kiritimati')).utcoffset(), todo.app is not None)"
    )
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "TZ")}
    env.update(PYTHONTZPATH=str(empty), TODO_DATABASE=str(tmp_path / "todo.db"), TODO_TIMEZONE="Europe/Paris")
    ran = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["True", "True", "2:00:00", "14:00:00", "True"]


# --- The calendar address ------------------------------------------------------------


def make_calendar(app):
    """POST /account/calendar; return the token the account page shows once."""
    answer = post(app, "/account/calendar")
    assert answer.status_int == 303 and answer.headers["Location"].endswith("/account")
    links = [a["href"] for a in app.get("/account").html.select('a[href^="/calendar/"]')]
    assert len(links) == 1 and re.fullmatch(r"/calendar/[^/]+\.ics", links[0]), links
    return links[0][len("/calendar/") : -len(".ics")]


def fetch_calendar(make_app, token, status=200):
    """GET the calendar address with no cookie at all, as a phone's calendar would."""
    return make_app().get(f"/calendar/{token}.ics", status=status)


def test_the_calendar_address_is_shown_once_and_needs_no_cookie(alice, make_app):
    """The account page shows the link once; GET it signed out: 200 text/calendar, parsed by icalendar."""
    token = make_calendar(alice)
    again = alice.get("/account")
    assert token not in again.text and not again.html.select('a[href^="/calendar/"]')
    answer = fetch_calendar(make_app, token)
    assert answer.content_type == "text/calendar"
    parsed = icalendar.Calendar.from_ical(answer.body)
    assert parsed.name == "VCALENDAR" and parsed["VERSION"] == "2.0" and "PRODID" in parsed
    assert len(token) >= 22  # 128 bits or more, base64url


def test_the_calendar_has_one_all_day_event_per_not_done_dated_item_in_lists_owned_or_shared(app, make_app):
    """SUMMARY the title, DTSTART;VALUE=DATE the date, UID and DTSTAMP; done, undated and unshared items left out."""
    alice, bob, carol = app, user(make_app, "bob"), user(make_app, "carol")
    register(alice)
    work, bobs, carols = new_list(alice, "Work"), new_list(bob, "Bob's"), new_list(carol, "Carol's")
    share(bob, bobs, "alice")
    long_title = "Ünïcödé ✓ 日本語のタイトル — " * 6  # far over 75 octets: folded on the wire
    expected = {
        "Milk, eggs; bread \\ butter": date(2027, 1, 5),
        long_title.strip(): date(2027, 2, 28),
        "Report: Q1": date(2026, 3, 31),
        "Bob's shared one": date(2030, 12, 31),
        "Repeats weekly": date(2099, 1, 5),
    }
    add(alice, "Milk, eggs; bread \\ butter", "2027-01-05")
    add(alice, long_title, "2027-02-28")
    add(alice, "No date")
    done = add(alice, "Done already", "2027-01-06")
    toggle(alice, done)
    add(alice, "Report: Q1", "2026-03-31", list_id=work)
    add(alice, "Repeats weekly", "2099-01-05", "weekly", list_id=work)
    add(bob, "Bob's shared one", "2030-12-31", list_id=bobs)
    add(carol, "Carol's own", "2027-01-05", list_id=carols)
    body = fetch_calendar(make_app, make_calendar(alice)).body
    assert all(len(line) <= 75 for line in body.split(b"\r\n")), "RFC 5545 folds lines at 75 octets"
    assert b"DTSTART;VALUE=DATE:20270105\r\n" in body
    events = icalendar.Calendar.from_ical(body).walk("VEVENT")
    assert {str(event["SUMMARY"]): event["DTSTART"].dt for event in events} == expected
    assert len(events) == len(expected)
    for event in events:
        assert type(event["DTSTART"].dt) is date  # an all-day event, not a moment
        assert event["DTSTART"].params.get("VALUE") == "DATE"
        assert str(event["UID"]) and event["DTSTAMP"].dt.tzinfo is not None
    assert len({str(event["UID"]) for event in events}) == len(events)
    post(alice, f"/lists/{work}/items/1/toggle")  # done: gone from the calendar at its next fetch
    events = icalendar.Calendar.from_ical(fetch_calendar(make_app, make_calendar(alice)).body).walk("VEVENT")
    assert "Report: Q1" not in {str(event["SUMMARY"]) for event in events} and len(events) == len(expected) - 1


def test_the_database_keeps_only_the_sha256_of_the_calendar_token(alice, database):
    """users.calendar_hash is the SHA-256 hex of the token, never the token."""
    token = make_calendar(alice)
    with opened(database) as db:
        (kept,) = db.execute("SELECT calendar_hash FROM users WHERE username = 'alice'").fetchone()
    assert kept == hashlib.sha256(token.encode()).hexdigest()


@sqlite_only
def test_the_calendar_token_appears_nowhere_in_the_database_files(alice, database):
    """Every byte of the SQLite file and its WAL: the token's hash is there, the token is not (SQLite's own files)."""
    token = make_calendar(alice)
    stored = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored
    assert token.encode() not in stored


def test_replacing_the_calendar_address_kills_the_old_one_and_turning_it_off_kills_it(alice, make_app, database):
    """Replace: the old address 404, the new one 200; off: 404, nothing kept; a random token: 404."""
    old = make_calendar(alice)
    fetch_calendar(make_app, old)
    new = make_calendar(alice)
    assert new != old
    fetch_calendar(make_app, old, status=404)
    fetch_calendar(make_app, new)
    answer = post(alice, "/account/calendar/delete")
    assert answer.status_int == 303 and answer.headers["Location"].endswith("/account")
    fetch_calendar(make_app, new, status=404)
    with opened(database) as db:
        assert db.execute("SELECT calendar_hash FROM users WHERE username = 'alice'").fetchone()[0] is None
    for token in (secrets.token_urlsafe(32), hashlib.sha256(new.encode()).hexdigest(), "x", new[:-1]):
        fetch_calendar(make_app, token, status=404)


def test_a_random_token_is_404_before_anyone_has_a_calendar(app, make_app):
    """A token that is no one's: 404, the same as an address turned off."""
    answer = fetch_calendar(make_app, secrets.token_urlsafe(32), status=404)
    assert "no such calendar" in answer.text


# --- Exports -------------------------------------------------------------------------


def test_both_exports_carry_due_and_repeat(alice):
    """ "due" is "YYYY-MM-DD" or null, "repeat" is "" when none, in /export.json and /lists/<id>/export.json."""
    add(alice, "dated", "2027-01-05", "weekly")
    add(alice, "undated")
    other = new_list(alice, "Other")
    add(alice, "there", "2028-02-29", list_id=other)
    first = [(item["title"], item["due"], item["repeat"]) for item in items_of(alice)]
    assert first == [("dated", "2027-01-05", "weekly"), ("undated", None, "")]
    whole = alice.get("/export.json").json
    first_id = whole["lists"][0]["id"]
    assert [(item["due"], item["repeat"]) for item in alice.get(f"/lists/{first_id}/export.json").json["items"]] == [
        ("2027-01-05", "weekly"),
        (None, ""),
    ]
    exported = {entry["name"]: [(item["due"], item["repeat"]) for item in entry["items"]] for entry in whole["lists"]}
    assert exported == {"To do": [("2027-01-05", "weekly"), (None, "")], "Other": [("2028-02-29", "")]}
    assert items_of(alice, other)[0] | {"created": None} == {
        "no": 1,
        "title": "there",
        "done": False,
        "created": None,
        "due": "2028-02-29",
        "repeat": "",
    }


def test_today_has_pages_of_500_and_every_item_is_on_one(alice, database):
    """Over 500 items due: /today shows 500, links ?page=2 for the rest; ticking one off there comes back to it."""
    fill_items(database, "alice", 501)
    with opened(database) as db, todo.transaction(db):
        db.execute("UPDATE items SET due = '2020-01-01'")
    first = alice.get("/today")
    assert first.text.count("data-no=") == 500 and 'href="/today?page=2"' in first.text
    second = alice.get("/today?page=2")
    assert re.findall(r'data-no="(\d+)"', second.text) == ["501"]
    list_id = re.search(r'data-list="(\d+)"', second.text)[1]
    answer = post(alice, f"/lists/{list_id}/items/501/toggle", back="/today?page=2")
    assert answer.status_int == 303 and answer.headers["Location"] == "/today?page=2"
    assert alice.get("/today?page=2").headers["Location"] == "/today"  # nothing left there: back to the first
    assert alice.get("/today?page=x", expect_errors=True).status_int == 404


def test_repeats_do_not_pass_the_lists_item_limit(make_app):
    """TODO_MAX_ITEMS=3 and three daily items: marking them done would add a 4th, so it is a 400 and nothing changes."""
    app = make_app(TODO_MAX_ITEMS="3")
    register(app)
    for title in ("water the plants", "walk", "read"):
        assert post(app, "/items", title=title, due="2026-01-01", repeat="daily").status_int == 303
    for path in ("/items/toggle-all", "/items/1/toggle"):
        answer = post(app, path)
        assert answer.status_int == 400 and "the most one list may hold" in answer.text, path
    items = app.get("/export.json").json["items"]
    assert [(item["no"], item["done"], item["repeat"]) for item in items] == [(n, False, "daily") for n in (1, 2, 3)]
