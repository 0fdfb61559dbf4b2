"""The seed's popular recipe: a multiprocessing BaseManager holding a shared dict and a lock.

    python seed_manager.py              # the manager server process (holds the state)
    gunicorn -w 4 seed_manager:app      # the workers, each connecting to it

Correct across workers (every increment goes through one server process under
one lock), but every request pays two or three round trips to that process,
and the count lives only in its memory: a restart starts again from 0.
"""

import os
import threading
from multiprocessing.managers import AcquirerProxy, BaseManager, DictProxy

ADDRESS = ("127.0.0.1", int(os.environ.get("SEED_MANAGER_PORT", "50000")))
AUTHKEY = b"seed-manager-recipe"


class StateManager(BaseManager):
    """The manager class; the server registers the real objects, workers the proxies."""


def serve():
    """Run the manager server: the one process that holds the counter."""
    state, lock = {"count": 0}, threading.Lock()
    StateManager.register("get_state", callable=lambda: state, proxytype=DictProxy)
    StateManager.register("get_lock", callable=lambda: lock, proxytype=AcquirerProxy)
    StateManager(address=ADDRESS, authkey=AUTHKEY).get_server().serve_forever()


_proxies = None  # this worker's connection to the manager, made after gunicorn forks


def shared():
    """Return this worker's proxies for the shared dict and lock, connecting on first use."""
    global _proxies
    if _proxies is None:
        StateManager.register("get_state", proxytype=DictProxy)
        StateManager.register("get_lock", proxytype=AcquirerProxy)
        manager = StateManager(address=ADDRESS, authkey=AUTHKEY)
        manager.connect()
        _proxies = manager.get_state(), manager.get_lock()
    return _proxies


def app(environ, start_response):
    """Add one to the shared counter under the shared lock and answer its new value."""
    state, lock = shared()
    with lock:
        state["count"] = state["count"] + 1
        number = state["count"]
    body = str(number).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    serve()
