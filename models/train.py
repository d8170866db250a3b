"""Train a new emotion model from a recipe file: the one command of models/README.md.

    python -m models.train --recipe models/recipes/3.0.yaml --teachers ../shared/teachers [--resume] [--ship]

Everything after ``python -m models.train`` goes to models.recipe (``--help`` lists its options).
Without ``--recipe`` the command says where the earlier trainers are and exits 2: it does not
forward to them, so that a forgotten ``--recipe`` never starts a 30-epoch run of a superseded model.
1.0.0's from-scratch trainer (what ``python -m models.train`` ran without ``--recipe`` before issue
28) is ``python -m models.studies.train_v1``, with the same options; 2.0.0's is
``python -m models.studies.distill`` (models/studies/).
"""
from __future__ import annotations

import sys

#: Where the trainers of earlier models went (issue 28); printed without --recipe and after --help.
EARLIER = ("1.0.0's from-scratch trainer is python -m models.studies.train_v1 (same options as "
           "python -m models.train had without --recipe), 2.0.0's python -m models.studies.distill")


def main(argv: list[str] | None = None) -> int:
    """``--recipe FILE ...``: models.recipe.main; ``--help``: its options; anything else: exit 2."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a == "--recipe" or a.startswith("--recipe=") for a in argv):
        from models import recipe

        return recipe.main(argv)
    if "-h" in argv or "--help" in argv:
        from models import recipe

        try:
            recipe.main(["--help"])     # argparse prints the recipe's options and exits 0
        except SystemExit:
            pass
        print(f"\nEarlier models: {EARLIER}.")
        return 0
    print(f"models.train: --recipe FILE is required (e.g. --recipe models/recipes/3.0.yaml); {EARLIER}",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
