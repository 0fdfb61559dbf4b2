"""Property-based tests: whatever arrives at any route, signed in or out, never a 5xx, never another's data.

Each test registers its users once (hashing is slow on purpose) in its own database and then
throws bounded numbers of generated requests at the in-process app; conftest's TestApp fails on
any 5xx. The test reads the database over one connection of its own, kept for all the examples.
"""

import re
from urllib.parse import quote, quote_from_bytes, urlencode

import pytest
from conftest import PASSWORD, TestApp, copy_session, csrf_of, opened, post, register
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import todo

# Expected here, by the hundred: tampered cookies and junk methods are the point.
pytestmark = [
    pytest.mark.filterwarnings("ignore::beaker.exceptions.BeakerWarning"),
    pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD"),
]

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ_HASHING = settings(FUZZ, max_examples=100)  # each example hashes a password: ~40 ms

ROUTES = [
    "/",
    "/active",
    "/completed",
    "/register",
    "/login",
    "/logout",
    "/items",
    "/items/1/toggle",
    "/items/1/edit",
    "/items/1/delete",
    "/items/toggle-all",
    "/items/clear-completed",
    "/export.json",
    "/account",
    "/account/password",
    "/account/logout-all",
    "/account/delete",
    "/healthz",
    "/static/style.css",
]
FIELD_NAMES = ["csrf_token", "title", "back", "username", "password", "new_password"]
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data",
    "multipart/form-data; boundary=b",
    "multipart/form-data; boundary=b; charset=no-such-charset",
    "text/plain",
    "application/json",
    "",
]
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


USER_COLUMNS = "id, username, password_hash, created, session_secret, first_list_id"
LIST_COLUMNS = "id, owner_id, name, created, last_item_no"
ITEM_COLUMNS = "list_id, no, title, done, created"


class Site:
    """Alice (whose requests are fuzzed) and bob (whose data must never change), on one app."""

    def __init__(self, app, db):
        self.app, self.db = app, db  # db: a connection to the test's database, as another program has
        register(app, "bob", "bob's own password")
        for title in ("bob's first", "bob's second"):
            post(app, "/items", title=title)
        post(app, "/items/2/toggle")
        self.bob = self.snapshot("bob")
        app.reset()
        register(app, "alice")
        for title in ("a", "b", "c"):
            post(app, "/items", title=title)
        post(app, "/items/3/toggle")
        self.alice_cookies = copy_session(app, TestApp(app.app))
        self.alice_token = csrf_of(app.get("/"))
        self.alice_row, self.alice_lists, self.alice_items = self.snapshot("alice")
        self.alice_cookie_header = SentCookies(app.cookiejar).header

    def snapshot(self, username):
        """Return everything stored for a user: the account row, the lists it owns and their items, as tuples."""
        user = self.db.execute(f"SELECT {USER_COLUMNS} FROM users WHERE username = ?", (username,)).fetchone()
        owner = user[0] if user else -1
        sql = f"SELECT {LIST_COLUMNS} FROM lists WHERE owner_id = ? ORDER BY id"
        lists = [tuple(row) for row in self.db.execute(sql, (owner,))]
        sql = f"SELECT {ITEM_COLUMNS} FROM items WHERE list_id IN (SELECT id FROM lists WHERE owner_id = ?)"
        items = [tuple(item) for item in self.db.execute(sql + " ORDER BY list_id, no", (owner,))]
        return user and tuple(user), lists, items

    def sign_in_as_alice(self):
        """Give the app alice's cookie, undoing whatever the last example did to her account."""
        with todo.transaction(self.db) as db:  # one commit
            # Undo sign-out-everywhere, a password change or a deletion, any throttling,
            # and the last example's changes to her lists and items.
            updates = ", ".join(f"{column} = excluded.{column}" for column in USER_COLUMNS.split(", ")[1:])
            sql = f"INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            db.execute(sql + updates, self.alice_row)
            db.execute("DELETE FROM lists WHERE owner_id = ?", (self.alice_row[0],))  # their items go with them
            db.executemany(f"INSERT INTO lists ({LIST_COLUMNS}) VALUES (?, ?, ?, ?, ?)", self.alice_lists)
            db.executemany(f"INSERT INTO items ({ITEM_COLUMNS}) VALUES (?, ?, ?, ?, ?)", self.alice_items)
            db.execute("DELETE FROM login_failures")
        self.app.reset()
        copy_session(self.alice_cookies, self.app)
        return self.alice_token

    def tampered_alice_cookie(self, position):
        """Return alice's Cookie header with one character changed."""
        header = self.alice_cookie_header
        return header[:position] + ("A" if header[position] != "A" else "B") + header[position + 1 :]

    def sign_out(self):
        """Start a fresh signed-out session; return its form token."""
        self.app.reset()
        return csrf_of(self.app.get("/login"))

    def check_bob(self):
        """Insist that bob's account and items are exactly as they were."""
        assert self.snapshot("bob") == self.bob


@pytest.fixture
def site(app, database):
    """Return the two-user site, with a connection to its database for the test's examples."""
    with opened(database) as db:
        yield Site(app, db)


texts = st.text(max_size=40)
raw_bytes = st.binary(max_size=40)
field_names = st.one_of(st.sampled_from(FIELD_NAMES), texts, raw_bytes)
field_values = st.one_of(
    st.sampled_from([PASSWORD, "", "/", "/active", "/completed", "alice", "bob", "x" * 501]),
    texts,
    raw_bytes,
)
fields = st.lists(st.tuples(field_names, field_values), max_size=6)
item_numbers = st.one_of(
    st.integers(min_value=-3, max_value=2**70).map(str),
    st.text(alphabet="0123456789", min_size=1, max_size=30),
    st.sampled_from(["0" * 40 + "1", "9" * 5000, "1e3", "0x1", "١"]),
)


def as_bytes(value):
    """Return text as UTF-8, bytes as they are."""
    return value.encode() if isinstance(value, str) else value


def multipart(pairs, boundary="b"):
    """Return a multipart/form-data body for the pairs, however odd their names and values."""
    body = b""
    for name, value in pairs:
        body += b"--" + boundary.encode() + b"\r\n"
        body += b'Content-Disposition: form-data; name="' + as_bytes(name) + b'"\r\n\r\n'
        body += as_bytes(value) + b"\r\n"
    return body + b"--" + boundary.encode() + b"--\r\n"


@st.composite
def paths(draw):
    """Return a path under any route: known, with odd item numbers, extended, or arbitrary."""
    kind = draw(st.sampled_from(["route", "item", "under", "arbitrary", "bytes"]))
    if kind == "route":
        path = draw(st.sampled_from(ROUTES))
    elif kind == "item":
        action = draw(st.one_of(st.sampled_from(["toggle", "edit", "delete"]), texts.map(quote)))
        path = f"/items/{quote(draw(item_numbers))}/{action}"
    elif kind == "under":
        path = draw(st.sampled_from(ROUTES)).rstrip("/") + "/" + quote(draw(texts), safe="/")
    elif kind == "arbitrary":
        path = "/" + quote(draw(texts), safe="/")
    else:
        path = "/" + quote_from_bytes(draw(raw_bytes), safe="/")
    if draw(st.booleans()):
        path += "?" + urlencode(draw(fields))
    return path


@st.composite
def requests_(draw, token):
    """Return (method, path, body, content type): a request anyone could send, maybe with the form token."""
    method = draw(
        st.one_of(
            st.just("POST"),
            st.sampled_from(METHODS),
            st.text(st.characters(min_codepoint=0x41, max_codepoint=0x5A), min_size=1, max_size=8),
        )
    )
    pairs = draw(fields)
    csrf = draw(st.sampled_from(["valid", "missing", "wrong"]))
    if csrf == "valid":
        pairs.insert(draw(st.integers(0, len(pairs))), ("csrf_token", token))
    elif csrf == "wrong":
        pairs.append(("csrf_token", draw(st.one_of(texts, raw_bytes))))
    encoding = draw(st.sampled_from(["urlencoded", "multipart", "raw", "none"]))
    if encoding == "urlencoded":
        body, content_type = urlencode(pairs).encode(), "application/x-www-form-urlencoded"
    elif encoding == "multipart":
        body, content_type = multipart(pairs), "multipart/form-data; boundary=b"
    elif encoding == "raw":
        body = draw(st.one_of(raw_bytes, st.just(multipart(pairs)), st.just(urlencode(pairs).encode())))
        content_type = draw(st.one_of(st.sampled_from(CONTENT_TYPES), st.text(PRINTABLE, max_size=60)))
    else:
        body, content_type = b"", ""
    return method, draw(paths()), body, content_type, csrf == "valid"


class SentCookies:
    """A cookie jar for WebTest that sends the same Cookie header every time and keeps nothing.

    WebTest's own jar reads the request's URL, which fails on paths that are not UTF-8.
    """

    def __init__(self, cookiejar):
        self.header = "; ".join(f"{cookie.name}={cookie.value}" for cookie in cookiejar)

    def add_cookie_header(self, request):
        """Put the header on the request, if there are cookies."""
        if self.header:
            request.add_unredirected_header("Cookie", self.header)

    def extract_cookies(self, response, request):
        """Keep nothing: each example starts from a known session."""


def send(app, method, path, body, content_type, cookie=None):
    """Send one request with the app's cookies, or the given Cookie header; TestApp fails on a 5xx."""
    once = TestApp(app.app)
    once.cookiejar = SentCookies(app.cookiejar)
    if cookie is not None:
        once.cookiejar.header = cookie
    headers = {"Content-Type": content_type} if content_type else {}
    return once.request(path, method=method, body=body, headers=headers, expect_errors=True)


@FUZZ
@given(st.data())
def test_any_request_signed_in_never_fails_and_never_touches_another_user(site, data):
    token = site.sign_in_as_alice()
    before = site.snapshot("alice")
    method, path, body, content_type, valid_token = data.draw(requests_(token))
    send(site.app, method, path, body, content_type)
    site.check_bob()
    if method != "POST" or not valid_token:
        assert site.snapshot("alice") == before  # only a POST with the form token may change anything


@FUZZ
@given(st.data())
def test_any_request_signed_out_never_fails_and_changes_no_one(site, data):
    token = site.sign_out()
    before = site.snapshot("alice")
    cookie = data.draw(
        st.one_of(
            st.none(),  # the fresh session's own cookie
            st.text(PRINTABLE, max_size=80),
            st.text(PRINTABLE, max_size=300).map("todo_session={}".format),
            st.integers(13, len(site.alice_cookie_header) - 2).map(site.tampered_alice_cookie),
        )
    )
    send(site.app, *data.draw(requests_(token))[:4], cookie=cookie)
    site.check_bob()
    assert site.snapshot("alice") == before


POST_ROUTES = [route for route in ROUTES if route not in ("/", "/active", "/completed", "/export.json", "/healthz")]
POST_ROUTES = [r for r in POST_ROUTES if r not in ("/account", "/static/style.css")]


@st.composite
def forms(draw, token):
    """Return (path, body, content type): a well-formed form for a real action, with any values in it."""
    path = draw(
        st.one_of(
            st.sampled_from(POST_ROUTES),
            st.builds("/items/{}/{}".format, st.integers(0, 5), st.sampled_from(["toggle", "edit", "delete"])),
        )
    )
    pairs = [(name, draw(field_values)) for name in FIELD_NAMES[1:] if draw(st.booleans())]
    pairs += draw(st.lists(st.tuples(st.one_of(texts, raw_bytes), field_values), max_size=2))
    pairs = draw(st.permutations(pairs)) + [("csrf_token", token)]  # last, so no other value hides it
    if draw(st.booleans()):
        return path, urlencode(pairs).encode(), "application/x-www-form-urlencoded"
    return path, multipart(pairs), "multipart/form-data; boundary=b"


@FUZZ
@given(st.data())
def test_any_form_at_any_action_never_fails_and_never_touches_another_user(site, data):
    """With the form token, every handler is reached: whatever the values, a 4xx at worst, and only alice's data."""
    token = site.sign_in_as_alice()
    path, body, content_type = data.draw(forms(token))
    answer = send(site.app, "POST", path, body, content_type)
    assert answer.status_int != 403
    site.check_bob()


@FUZZ
@given(number=item_numbers, action=st.sampled_from(["toggle", "edit", "delete"]), title=texts)
def test_any_item_number_is_the_users_own_item_or_404(site, number, action, title):
    token = site.sign_in_as_alice()
    mine = {str(item[1]) for item in site.alice_items}
    form = urlencode({"csrf_token": token, "title": title}).encode()
    answer = send(site.app, "POST", f"/items/{quote(number)}/{action}", form, "application/x-www-form-urlencoded")
    site.check_bob()
    own = number.isascii() and number.isdigit() and (number.lstrip("0") or "0") in mine
    if not own:
        assert answer.status_int == 404
        assert "bob" not in answer.text
    elif action == "edit" and (len(title.strip()) > 500 or "\x00" in title):  # too long, or a NUL in it
        assert answer.status_int == 400
    else:
        assert answer.status_int == 303


def test_item_number_of_thousands_of_digits_is_404(alice):
    """int() refuses over 4,300 digits: such a number must be a 404, and leading zeros still mean #1."""
    post(alice, "/items", title="a")
    for action in ("toggle", "edit", "delete"):
        assert post(alice, f"/items/{'9' * 5000}/{action}", title="x").status_int == 404
    assert post(alice, f"/items/{'0' * 5000}1/toggle").status_int == 303


USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,32}")


def as_the_site_reads(value):
    """Return a form value as the site decodes it: text, or '' when the bytes are not UTF-8."""
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return ""


@FUZZ_HASHING
@given(username=st.one_of(texts, st.from_regex(USERNAME, fullmatch=True)), password=st.one_of(texts, raw_bytes))
def test_register_follows_the_rules_for_any_input(site, username, password):
    token = site.sign_out()
    # Taken in any case: the site keeps one account per spelling (SQLite's NOCASE, PostgreSQL's lower() index).
    # Only a valid name can be taken (and only text PostgreSQL can hold, without NUL, is then looked up).
    sql = "SELECT 1 FROM users WHERE lower(username) = lower(?)"
    taken = USERNAME.fullmatch(username.strip()) and site.db.execute(sql, (username.strip(),)).fetchone()
    answer = site.app.post(
        "/register", {"username": username, "password": password, "csrf_token": token}, expect_errors=True
    )
    text = as_the_site_reads(password)  # a NUL is refused in any field: PostgreSQL's text cannot hold it
    ok = USERNAME.fullmatch(username.strip()) and 8 <= len(text) <= 1024 and "\x00" not in text and not taken
    assert answer.status_int == (303 if ok else 400)
    site.check_bob()


@FUZZ_HASHING
@given(
    username=st.one_of(st.sampled_from(["alice", "ALICE", "bob", " alice "]), texts),
    password=st.one_of(st.just(PASSWORD), texts, raw_bytes),
)
def test_sign_in_with_any_input_lets_no_one_in_without_the_password(site, username, password):
    token = site.sign_out()
    site.db.execute("DELETE FROM login_failures")
    answer = site.app.post(
        "/login", {"username": username, "password": password, "csrf_token": token}, expect_errors=True
    )
    assert answer.status_int == (303 if password == PASSWORD and username.strip().lower() == "alice" else 400)
    site.check_bob()
