"""The metrics HTTP server under abuse: idle, slow and excess connections cost bounded threads and time."""

import socket
import threading
import time

import pytest

from borg_server.status import metrics


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(metrics, "CONNECTION_LIMIT", 4)
    monkeypatch.setattr(metrics, "REQUEST_TIMEOUT", 0.3)
    monkeypatch.setattr(metrics, "REQUEST_DEADLINE", 1.0)
    exposition = metrics.Exposition()
    exposition.update("borg_appliance_up 1\n")
    running = metrics.serve(0, exposition)
    yield running
    running.shutdown()
    running.server_close()


def connect(server) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5)
    return connection


def scrape(server) -> bytes:
    with connect(server) as connection:
        connection.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        return b"".join(iter(lambda: connection.recv(65536), b""))


def closed_within(connection: socket.socket, seconds: float) -> bool:
    """Return whether the server closes the connection (EOF or reset) within seconds."""
    connection.settimeout(seconds)
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_scrape_answers_with_the_last_text(server):
    assert scrape(server).endswith(b"\r\n\r\nborg_appliance_up 1\n")


def test_connections_over_the_limit_are_closed_at_once_and_threads_stay_bounded(server):
    threads_before = threading.active_count()
    idle = [connect(server) for _ in range(4)]
    excess = [connect(server) for _ in range(40)]
    assert all(closed_within(connection, 0.25) for connection in excess)
    assert threading.active_count() - threads_before <= 4 + 4  # handlers plus their deadline timers
    for connection in idle + excess:
        connection.close()


def test_a_silent_connection_is_closed_after_the_read_timeout_and_frees_its_slot(server):
    idle = [connect(server) for _ in range(4)]
    started = time.monotonic()
    assert all(closed_within(connection, 2) for connection in idle)
    assert time.monotonic() - started < 1.5
    assert scrape(server).endswith(b"borg_appliance_up 1\n")


def test_a_slow_sender_is_cut_off_at_the_deadline(server):
    with connect(server) as connection:
        started = time.monotonic()
        connection.sendall(b"GET /metrics HTTP/1.0\r\n")
        while time.monotonic() - started < 3:  # one header line every 0.2 s never finishes the request
            try:
                connection.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            if closed_within(connection, 0.2):
                break
        assert time.monotonic() - started < 2
