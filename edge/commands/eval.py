"""`fer-edge eval`: measure an emotion model on the FER+ test split (see models/evaluate.py)."""
from models.evaluate import add_arguments, run  # noqa: F401  (the command lives beside the training code)
