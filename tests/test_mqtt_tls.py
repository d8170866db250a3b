"""TLS with a CA made by the test, a client certificate and a password; a wrong password is one clear
error line, shown in stats, and the events wait in the queue until the right password is given."""
from __future__ import annotations

import logging
import re
import time

import pytest

from conftest_mqtt import (VALIDATORS, assert_complete_and_ordered, count_events, event_payloads,
                           needs_mosquitto, open_sink, wait_until)
from tests.helpers.broker import Broker

from tests.helpers.publish_demo import demo_event

pytestmark = needs_mosquitto


@pytest.fixture(scope="module")
def tls_broker():
    with Broker(tls=True, users={"edge": "correct horse"}, client_certs=True) as b:
        yield b


def test_tls_with_client_certificate_and_password_delivers(tls_broker, tmp_path):
    sub = tls_broker.subscribe_collect("fer-edge/dev1/#")
    sink = open_sink(tls_broker, tmp_path / "q.db")
    assert sink.port == tls_broker.port and sink.cfg.tls.enabled and sink.cfg.tls.cert_file
    sink.publish_all(demo_event(k) for k in range(100))
    assert sub.wait_for(count_events(n=100), 10), tls_broker.log_text()[-1000:]
    assert_complete_and_ordered(event_payloads(sub), 100)
    VALIDATORS["status"].validate(sub.on("fer-edge/dev1/status")[0].json())
    sink.close()


def test_wrong_password_is_one_clear_error_and_events_stay_queued(tls_broker, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="edge.publish.mqtt"):
        sink = open_sink(tls_broker, tmp_path / "q.db", password="wrong", reconnect_min_s=0.1, reconnect_max_s=0.1)
        sink.publish_all(demo_event(k) for k in range(40))
        assert wait_until(lambda: sink.connect_attempts >= 5, 10)
        stats = sink.publish_stats({})
        sink.close(timeout=0.5)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors                        # once per interval, not once per attempt
    assert "refused the connection: Not authorized" in errors[0] and "mqtt.password" in errors[0]
    assert re.search(r"; \d+ events stay queued, retrying$", errors[0])
    VALIDATORS["stats"].validate(stats)
    assert "Not authorized" in stats["mqtt"]["last_error"] and stats["queue"]["depth"] == 40

    sub = tls_broker.subscribe_collect("fer-edge/dev1/events")
    fixed = open_sink(tls_broker, tmp_path / "q.db")       # same queue file, right password
    assert sub.wait_for(count_events(n=40), 10)
    assert_complete_and_ordered(event_payloads(sub), 40)
    fixed.close()


def test_untrusted_broker_certificate_is_reported(tls_broker, tmp_path, caplog):
    other = Broker(tls=True)                                 # another CA: the client must refuse this broker
    try:
        with caplog.at_level(logging.WARNING, logger="edge.publish.mqtt"):
            sink = open_sink(tls_broker, tmp_path / "q.db", tls={"enabled": True, "ca_file": other.ca_file})
            assert wait_until(lambda: sink.last_error is not None, 10)
            time.sleep(0.2)
            sink.close(timeout=0.2)
        assert "CERTIFICATE_VERIFY_FAILED" in sink.last_error or "certificate verify failed" in sink.last_error
        assert "mqtt.tls.ca_file" in sink.last_error
        assert not sink.connected
    finally:
        other.close()
