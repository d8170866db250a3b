"""`fer-edge recognize`: a live annotated preview (tracked faces, smoothed emotions) in a window or over MJPEG.

    fer-edge recognize --source 0                  # the first camera, in an OpenCV window (q or Esc quits)
    fer-edge recognize --source clip.mp4 --mjpeg 8090 --no-window   # watch at http://127.0.0.1:8090/
    fer-edge recognize --demo                      # the built-in demo clip, no camera needed

It runs the same FrameProcessor as the service (detect every N frames, track, classify at a rate);
``--events`` also prints the events as JSON lines through the same sink as ``fer-edge run`` without
a broker (ids, sequence numbers, the device id, and real dates for file sources). The MJPEG stream
listens on 127.0.0.1 unless ``--host`` says otherwise: it shows faces. While a preview is shown
(window or MJPEG) a video file plays at its own frame rate (``--no-pace``: as fast as possible), and
``--loop`` starts it again at the end, so that a viewer who connects late still sees something.
SIGTERM and Ctrl-C stop it as the end of the source does (the faces still in view get their
``face_left`` events).

Exit codes: 0 done (source ended or quit); 2 usage/config error or no way to show the preview;
3 a model, camera or port could not be opened.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from edge.clock import dated
from edge.commands.detect import add_pipeline_arguments, analyzer_from_args
from edge.config import AppConfig, load_config
from edge.exitcodes import EXIT_MODEL, EXIT_OK, EXIT_USAGE
from edge.frame_processor import FrameProcessor
from edge.preview import FpsMeter, MjpegServer, annotate, display_problem
from edge.publish import EventSink, StdoutSink
from edge.sources import Source, missing_file, open_source
from edge.sources.demo import as_demo

PROG = "fer-edge recognize"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--source or --demo, pipeline options, --mjpeg/--host, --no-window, --events, --max-frames."""
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--source", metavar="URI", help="camera index (0), device, video file, image folder, "
                      "rtsp:// URL or 'demo' (default: the config's source.uri)")
    what.add_argument("--demo", action="store_true", help="the built-in demo clip at its frame rate (two faces "
                      "come and go, 12 s): no camera or file needed")
    add_pipeline_arguments(parser)
    parser.add_argument("--mjpeg", type=int, metavar="PORT", nargs="?", const=-1,
                        help="also serve the preview as MJPEG over HTTP (default port: the config's)")
    parser.add_argument("--host", metavar="ADDR", help="address for --mjpeg (default 127.0.0.1: this device only)")
    parser.add_argument("--no-window", action="store_true", help="do not open an OpenCV window")
    parser.add_argument("--events", action="store_true", help="print the events as JSON lines on stdout")
    parser.add_argument("--max-frames", type=int, default=0, metavar="N", help="stop after N frames (0: no limit)")
    parser.add_argument("--loop", action="store_true", help="video files, images, folders: start again at the end")
    parser.add_argument("--pace", action=argparse.BooleanOptionalAction, default=None,
                        help="play a video file at its frame rate (default: yes while a window or MJPEG "
                             "preview is shown, else as fast as possible)")


class Terminated(Exception):
    """SIGTERM arrived: stop as at the end of the source."""


def _raise_terminated(signum: int, _frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)      # a second SIGTERM during the clean-up ends it at once
    raise Terminated()


def _config(args: argparse.Namespace) -> AppConfig:
    cfg = load_config(args.config) if args.config else AppConfig()
    if args.source is not None:
        cfg = cfg.model_copy(update={"source": cfg.source.model_copy(update={"uri": args.source, "kind": "auto"})})
    if args.demo:
        cfg = cfg.model_copy(update={"source": as_demo(cfg.source)})
    mjpeg = cfg.preview.mjpeg
    if args.mjpeg is not None:
        mjpeg = mjpeg.model_copy(update={"enabled": True, **({"port": args.mjpeg} if args.mjpeg >= 0 else {})})
    if args.host:
        mjpeg = mjpeg.model_copy(update={"host": args.host})
    # A preview of a file is watched: at its own speed, or it is over before a browser connects.
    shown = mjpeg.enabled or (cfg.preview.window and not args.no_window)
    pace = (cfg.source.pace or shown) if args.pace is None else args.pace
    source = cfg.source.model_copy(update={"pace": pace, "loop": cfg.source.loop or args.loop})
    return cfg.model_copy(update={"source": source,
                                  "preview": cfg.preview.model_copy(update={"mjpeg": mjpeg})})


def run(args: argparse.Namespace) -> int:
    """Open source, pipeline and preview outputs; process frames until the source ends or q/Esc."""
    try:
        cfg = _config(args)
    except ValueError as exc:             # ConfigError: one line per problem
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    window = cfg.preview.window and not args.no_window
    if window and (problem := display_problem()):
        if not cfg.preview.mjpeg.enabled and not args.events:
            print(f"{PROG}: cannot open a window: {problem}: use --mjpeg PORT and open the stream in a browser, "
                  "or --events, or run with a desktop", file=sys.stderr)
            return EXIT_USAGE
        if not cfg.preview.mjpeg.enabled:          # --events alone: say why nothing is shown
            print(f"{PROG}: no window ({problem})", file=sys.stderr)
        window = False
    if not window and not cfg.preview.mjpeg.enabled and not args.events:
        print(f"{PROG}: nothing to show: give --mjpeg PORT or --events, or run where a window can open",
              file=sys.stderr)
        return EXIT_USAGE
    if problem := missing_file(cfg.source):    # before the models load: one line, nothing else
        print(f"{PROG}: {problem}", file=sys.stderr)
        return EXIT_MODEL
    args.config = Path(args.config) if args.config else None
    analyzer, code = analyzer_from_args(args, PROG)
    if analyzer is None:
        return code
    server = None
    if cfg.preview.mjpeg.enabled:
        try:
            server = MjpegServer(cfg.preview.mjpeg).start()
        except OSError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return EXIT_MODEL
        print(f"{PROG}: preview at {server.url}", file=sys.stderr)
    proc = FrameProcessor(cfg, analyzer)
    source = open_source(cfg.source)
    sink = StdoutSink(cfg.device.id, cfg.events) if args.events else None
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _loop(args, cfg, source, proc, server, window, sink)
    except (KeyboardInterrupt, Terminated) as exc:
        print(f"{PROG}: stopped by {'SIGTERM' if isinstance(exc, Terminated) else 'Ctrl-C'} after the frame in "
              f"progress", file=sys.stderr)
        if sink is not None:
            sink.publish_all(proc.close())      # as at the end of the source: face_left for faces in view
        return EXIT_OK
    finally:
        source.close()
        if sink is not None:
            sink.close()
        if server is not None:
            server.close()
        if window:
            import cv2
            cv2.destroyAllWindows()


def _loop(args: argparse.Namespace, cfg: AppConfig, source: Source, proc: FrameProcessor,
          server: MjpegServer | None, window: bool, sink: EventSink | None) -> int:
    import cv2

    meter, n = FpsMeter(), 0
    ended = True                                  # the source ran out (not q/Esc, not --max-frames)
    for frame in dated(source, source.live):      # events carry real dates, as from `fer-edge run`
        result = proc.process(frame, now=time.time() if source.live else None)
        n += 1
        fps = meter.tick(time.monotonic())        # frames over the last 2 s: steady, not per-frame gaps
        if sink is not None and result.events:
            sink.publish_all(result.events)
        if window or server is not None:
            picture = annotate(frame.image, result.tracks, cfg.preview, status=f"{fps:.1f} fps")
            if server is not None:
                server.publish(picture)
            if window:
                cv2.imshow("fer-edge", picture)
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    ended = False
                    break
        if args.max_frames and n >= args.max_frames:
            ended = False
            break
    if sink is not None:
        sink.publish_all(proc.close())
    if ended:
        print(f"{PROG}: the source ended after {n} frames{'' if cfg.source.loop else ' (--loop plays it again)'}",
              file=sys.stderr)
    return EXIT_OK
