"""Tests for logging set-up: even at DEBUG the HTTP libraries never log, since their lines quote URLs whole."""

import logging

from borg_common.logs import setup_logging


def test_at_debug_urllib3_and_requests_log_nothing_while_the_programs_own_loggers_do(capsys):
    setup_logging("DEBUG")
    try:
        logging.getLogger("urllib3.connectionpool").debug('http://h:8080 "POST /ping/uuid-secret HTTP/1.1" 200')
        logging.getLogger("urllib3.connectionpool").warning("Failed to parse headers (url=http://h/token-secret)")
        logging.getLogger("requests").warning("http://h/requests-secret")
        logging.getLogger("borg_client.report").debug("own debug line")
    finally:
        setup_logging("INFO")

    err = capsys.readouterr().err
    assert "secret" not in err
    assert "own debug line" in err
