"""The control plane: which config a service runs, and every change to it (docs/structure.md).

plane.py        :class:`ControlPlane`: the file's and the running config, the layers, the serial
                record, the inbox of messages, the change on probation; answers on config/state
runtime.py      the one interface to the running service (:class:`Runtime`) and :class:`ApplyError`
messages.py     a config/set message -> the config to run (signature, serial, layer, validation)
layers.py       the remote layers (local file < groups < device) in the state directory
patch.py        what a message says: JSON Merge Patch, ``# mode:``, the lock-out check
signing.py      replay-safe signed messages (also used by the operator's tools: a shared contract)
probation.py    when a change of the sink or source has proved itself
reconfigure.py  changed sections -> a plan -> its execution through the runtime
storage.py      atomic writes with backups; the start-up fallback to a backup
inbox.py        messages from paho's thread to the main thread
model_updates.py, ota.py, selftest.py   model updates over the air: download, check, self-test, switch

Nothing here imports the service (edge/service/) or the operator's tools (edge/ops/).
"""
