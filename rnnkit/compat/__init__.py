"""The seed tutorial's own code and files, kept apart from the core, which never imports them.

* ``tutorial``: the tutorial's Python interface (``RNNNumpy``, ``train_with_sgd``, …) on rnnkit's engine;
* ``tutorial_gru``: the tutorial's GRU (Part 4), a cell of its own that imported models run;
* ``tutorial_import``: its saved npz models → model directories;
* ``seed_baseline``: its literal numpy code, the baseline of benchmarks and tests.

Importing this package registers the tutorial's GRU with the model schema and the numpy engine;
``import rnnkit`` does that, so any model directory of it loads.
"""

from rnnkit.compat import tutorial_gru  # noqa: F401  (registers the cell)
