"""A real RTSP server for the stream tests: GStreamer's gst-rtsp-server streaming a video file.

Run with the system Python, which has PyGObject and the GStreamer introspection data from Debian
(`python3-gi`, `gir1.2-gst-rtsp-server-1.0`, `gstreamer1.0-plugins-good`/`-bad`; .ci/run installs
them). The pyenv Python running the tests usually has no `gi`, hence a separate process:

    /usr/bin/python3 tests/helpers/rtsp_server.py VIDEO.mp4 PORT /stream

It serves the file's H.264 track unchanged (qtdemux ! h264parse ! rtph264pay, no re-encoding), at
the file's own pace, each client from the start of the file. It prints ``ready`` once listening
and runs until SIGTERM/SIGINT, which is how a test cuts the camera off.
"""
from __future__ import annotations

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: rtsp_server.py VIDEO PORT MOUNT", file=sys.stderr)
        return 2
    video, port, mount = argv
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")        # loopback only
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    launch = (f'( filesrc location="{video}" ! qtdemux ! h264parse config-interval=-1 '
              '! rtph264pay name=pay0 pt=96 config-interval=1 )')
    factory.set_launch(launch)
    factory.set_shared(False)              # every client gets its own pipeline, from the start
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
