"""The ceiling: a bare waitress "hello" app, served like todo (waitress, 8 threads, quiet)."""

import argparse
import logging


def app(environ, start_response):
    """Answer every request with a fixed five-byte body."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def main():
    """Serve the app on the given port."""
    import waitress

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # same as todo: no line per queued request
    waitress.serve(app, host="127.0.0.1", port=args.port, threads=args.threads)


if __name__ == "__main__":
    main()
