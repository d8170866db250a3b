"""One module per `fer-edge` subcommand: each has ``add_arguments(parser)`` and ``run(args) -> int``."""
