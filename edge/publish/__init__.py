"""Publishing: the durable event queue, the MQTT client, Home Assistant discovery and the stdout sink.

``make_sink(cfg)`` is the entry point; see docs/mqtt.md for the topics and payloads.
"""
from edge.publish.sink import EventSink, StdoutSink, build_sink, make_sink

__all__ = ["EventSink", "StdoutSink", "build_sink", "make_sink"]
