"""How earlier shipped models were made, and the diagnostics behind docs/accuracy.md.

Kept runnable for reproduction (``python -m models.studies.<name>``, the options they always had),
not the path of a new model: a new model comes from one recipe file and one command,
``python -m models.train --recipe FILE`` (models.recipe; models/README.md).

- ``train_v1``: 1.0.0's from-scratch trainer (FER+ votes only, VGG-style 32-64-128-256), which then
  runs ``select_tta`` and the int8 export; its ``--init``, ``--logit-adjust`` and ``--aux-presence``
  were fine-tuning experiments;
- ``select_tta``: 1.0.0's choice of the test-time views baked into the graph, on FER+ validation;
- ``distill``: 2.0.0's trainer (FER+ votes, teachers' soft labels, CK+), 2.0.0's step 1;
- ``soup``: 2.0.0's weight interpolation (WiSE-FT) and its (alpha, tau) choice on the odd-numbered
  Taiwanese performers, 2.0.0's step 2 (the recipe has its own ``interpolate`` step);
- ``frontier``: a diagnostic (docs/accuracy.md, session 7): how far tau, or eight free per-class
  offsets, go on the photographs while FER+ validation stays above a floor.

The arrow points one way: these modules import the main path (models.export, models.fit, ...),
never the reverse (tests/test_structure.py checks it).
"""
