"""fer-edge: facial-expression recognition on an edge board, publishing emotion events over MQTT."""
__version__ = "0.1.0"
