"""`fer-edge fleet`: the operator's side of fleet config and model updates (docs/fleet.md).

command.py with operator.py (MQTT), push.py and model_push.py (signed pushes and each device's
answer), outcome.py (answers to a push) and watch.py (events, de-duplicated). The device's side is
the control plane, edge/control/.
"""
