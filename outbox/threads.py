"""Helpers for thread pools whose workers use Django's database connections."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connections


def shutdown_closing_connections(executor: ThreadPoolExecutor, max_workers: int) -> None:
    """Close every worker's database connections, then shut the pool down.

    Django connections belong to the thread that opened them. One task per
    worker, held at a barrier until all have started, makes each worker
    thread run exactly one of them.
    """
    barrier = threading.Barrier(max_workers)

    def close_own_connections():
        try:
            barrier.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
        connections.close_all()

    futures = [executor.submit(close_own_connections) for _ in range(max_workers)]
    for future in futures:
        future.result()
    executor.shutdown(wait=True)
