"""Running requests at the same moment from real threads, each with its own database connection."""

import threading

from django.db import connection
from django.test import Client

from fiscobridge.accounts.services import create_api_token


def run_at_once(calls):
    """Run each zero-argument callable in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except Exception as error:  # surfaced by the assertions below
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def bearer_client(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {create_api_token(user=user).plain}")


def outcome(response):
    if isinstance(response, Exception):
        return repr(response)
    return response.status_code, response.json().get("error", {}).get("code", "ok")
