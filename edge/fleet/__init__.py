"""Fleet operations: config layers per group, the operator's `fer-edge fleet` command, model updates over the air.

Device side: :mod:`edge.fleet.layers` (local file < groups < device), :mod:`edge.fleet.ota` (model
updates). Operator side: :mod:`edge.fleet.command` with :mod:`edge.fleet.operator` (MQTT),
:mod:`edge.fleet.outcome` (answers to a push) and :mod:`edge.fleet.watch` (events). docs/fleet.md.
"""
