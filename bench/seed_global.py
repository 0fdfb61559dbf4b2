"""The seed's naive recipe: a module-global counter. Fast, and wrong under several workers.

    gunicorn -w 4 seed_global:app

Each worker process has its own `count`, so four workers hand out 1, 1, 1, 1, 2, 2, ...
and a restart starts again from 1.
"""

count = 0


def app(environ, start_response):
    """Add one to the counter and answer its new value."""
    global count
    count += 1
    body = str(count).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
