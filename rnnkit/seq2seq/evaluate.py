"""How well an encoder–decoder does on a split, beside the copy and lexicon baselines, and the
picture of where it looked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.seq2seq.baselines import Lexicon, copy
from rnnkit.seq2seq.data import Pairs, read_split
from rnnkit.seq2seq.decode import WINDOW, Window
from rnnkit.seq2seq.metrics import cer_by_length, loops, scores
from rnnkit.seq2seq.model import Seq2Seq, Translation


def evaluate_seq2seq(model: Seq2Seq, data: str | Path, split: str = "test", *, beam: int = 1,
                     limit: int | None = None, seed: int = 0, guard: bool = True,
                     window: Window | None = WINDOW) -> dict[str, Any]:
    """``model``: CER, word accuracy and BLEU of its outputs on ``split``; ``model+lexicon``: the
    same with the lexicon's confident spellings in place (``Lexicon.correct``); ``baselines``: the
    same for copying the source and for the lexicon of the training pairs; ``loops``: how many
    outputs repeat a 3-gram 4 times or more that their source does not; ``by_length``: CER by
    source length (20-character buckets), model and copy; ``pairs``: how many were scored
    (``limit`` draws that many at random, seeded); ``left_out``: pairs longer than the model reads
    or writes (its ``max_source`` and ``max_target``), which no output could match and whose edit
    distances would cost time quadratic in their length. ``guard`` and ``window``: decoding kept out
    of loops, and attending near its last focus (``rnnkit.seq2seq.decode``)."""
    pairs, left_out = within_limits(model, read_split(data, split, seed))
    if limit is not None and limit < len(pairs):
        pairs = pairs.take(np.sort(np.random.default_rng(seed).permutation(len(pairs))[:limit]))
    outputs = model.translate(pairs.sources, beam=beam, guard=guard, window=window)
    lexicon = Lexicon(read_split(data, "train", seed))
    baselines = {"copy": copy(pairs.sources), "lexicon": lexicon(pairs.sources)}
    return {"model": scores(outputs, pairs.targets),
            "model+lexicon": scores(lexicon.correct(pairs.sources, outputs), pairs.targets),
            "baselines": {name: scores(out, pairs.targets) for name, out in baselines.items()},
            "loops": loops(pairs.sources, outputs), "pairs": len(pairs), "left_out": left_out,
            "by_length": {"model": cer_by_length(pairs.sources, outputs, pairs.targets),
                          "copy": cer_by_length(pairs.sources, baselines["copy"], pairs.targets)},
            "examples": [{"source": s, "output": o, "reference": r}
                         for s, o, r in list(zip(pairs.sources, outputs, pairs.targets))[:5]]}


def within_limits(model: Seq2Seq, pairs: Pairs) -> tuple[Pairs, int]:
    """The pairs whose source and target fit the model's length limits, and how many did not."""
    c = model.config
    sources, targets = model.ids.text.split(pairs.sources), model.ids.text.split(pairs.targets)
    kept = [i for i, (s, t) in enumerate(zip(sources, targets)) if len(s) <= c.max_source and len(t) <= c.max_target]
    if not kept:
        raise RnnkitError(f"no pair is within the model's length limits ({c.max_source} source and {c.max_target} "
                          "target tokens); nothing to evaluate")
    return pairs.take(kept), len(pairs) - len(kept)


def plot_attention(translation: Translation, path: str | Path) -> None:
    """A heatmap of the attention weights: source tokens across, output tokens down (the end
    marker last), darker where the decoder looked."""
    from rnnkit.figures import pyplot, save_figure

    if translation.weights is None:
        from rnnkit.errors import RnnkitError

        raise RnnkitError("this model has no attention (--attention none): there is nothing to draw")
    plt = pyplot()
    weights = translation.weights
    label = lambda t: "␣" if t == " " else t
    rows, columns = weights.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.22 * columns + 1.5), max(3.0, 0.22 * rows + 1.2)))
    image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(columns), [label(t) for t in translation.source_tokens], fontsize=8)
    ax.set_yticks(range(rows), [label(t) for t in translation.output_tokens] + ["</s>"], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, label="attention weight")
    fig.tight_layout()
    save_figure(fig, path)
