"""The long-running service (`fer-edge run`): supervisor, pipeline thread, reconfiguration, health.

:class:`edge.service.supervisor.Service` is the entry point; see that module for how it runs.
"""
