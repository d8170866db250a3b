"""Test infrastructure shared by the tests and the benchmarks; never imported by edge/ (the runtime).

- ``broker``: a real mosquitto on a free loopback port (``Broker``, ``Collector``, ``free_port``)
- ``browser``: headless Chromium through Selenium (``chrome``, ``browser_problem``, ``wait_until``)
- ``postgres``: a throw-away PostgreSQL server (``PostgresServer``, ``postgres_problem``)
- ``publish_demo``: the deterministic demo event stream (``demo_event``) and its publisher
  (``python -m tests.helpers.publish_demo``)
- ``id_switches``: ``IdSwitchCounter``, likely tracker id switches without ground truth
- ``mjpeg_server``, ``rtsp_server``: camera streams served from a video file

Imported as ``tests.helpers.<module>`` with the repository root on ``sys.path``: pytest puts it there
(pyproject.toml, ``[tool.pytest.ini_options] pythonpath``); a child process a test starts with
``python -c`` or ``python -m`` from the repository root (``cwd=REPO``) has it as its working
directory; the bench/ scripts put it there themselves. ``tests`` itself stays a namespace package
(no ``tests/__init__.py``), so pytest keeps importing ``conftest`` and the test files as before.
The tests do not import bench/ (tests/test_structure.py checks it).
"""
