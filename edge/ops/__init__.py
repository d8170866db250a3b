"""The operator's tools: the `fer-edge fleet` command (fleet/) and the live dashboard (dashboard/).

They run on the operator's machine and talk to devices over MQTT only, through the shared contracts
(topics, payloads, signing, config); they never import the service or the control plane's device
side (docs/structure.md).
"""
