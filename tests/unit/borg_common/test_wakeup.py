"""Tests for borg_common.wakeup: a wait that a signal handler ends without taking a lock."""

import os
import signal
import threading
import time

from borg_common.wakeup import Wakeup


def test_a_wait_that_nothing_sets_times_out_with_false():
    started = time.monotonic()
    assert Wakeup().wait(0.05) is False
    assert time.monotonic() - started >= 0.05


def test_a_signal_handler_ends_a_long_wait_at_once():
    wakeup = Wakeup()
    previous = signal.signal(signal.SIGUSR1, lambda *_: wakeup.set())
    try:
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        started = time.monotonic()
        assert wakeup.wait(30) is True
        assert time.monotonic() - started < 5
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_many_sets_before_a_wait_are_one_wake_up_and_the_next_wait_waits_again():
    wakeup = Wakeup()
    for _ in range(10_000):  # more than the pipe holds: set() never blocks
        wakeup.set()
    assert wakeup.wait(0) is True
    assert wakeup.wait(0) is False
