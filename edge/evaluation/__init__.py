"""Measuring a model and the pipeline on labelled data: `fer-edge eval` and `fer-edge eval-faces`.

data.py       where the shared data is: ``--data`` (default ``../shared/data``, from the working directory)
ferplus.py    the FER+ archives and the majority test protocol
fer.py        one emotion model on a FER+ split (`fer-edge eval`; the training code in models/ uses it too)
taiwanese.py  the labelled Taiwanese photographs (`fer-edge eval-faces`)

Installed with the package: nothing here needs the repository checkout, only the data.
"""
