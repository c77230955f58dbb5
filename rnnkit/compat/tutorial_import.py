"""Import the tutorial's saved models (numpy ``.npz``) as rnnkit model directories.

The vanilla RNN: the published ``trained-model-theano.npz`` holds the vanilla RNN's ``U`` (H×C), ``V`` (C×H) and
``W`` (H×H) as float32, H = 50 and C = 8000. Its vocabulary is the tutorial's: the
``vocabulary_size - 1`` most frequent words, then ``UNKNOWN_TOKEN`` last — which is the order
``rnnkit prepare`` writes, so ``--vocab-from`` a corpus prepared from the same text fits.
The arrays are stored as they are, bit for bit.

The GRU (Part 4): ``E, U, W, b, V, c`` (see ``rnnkit.compat.tutorial_gru``), with its own
vocabulary order: a mask token at index 0, ``UNKNOWN_TOKEN`` at 1, then the words; give it as
``--vocab FILE``, one token per line.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from rnnkit.compat.tutorial_gru import CELL
from rnnkit.data.corpus import PreparedCorpus
from rnnkit.errors import RnnkitError
from rnnkit.io.modeldir import ModelFiles, save_model
from rnnkit.lm.config import LMConfig
from rnnkit.models.schema import check_params
from rnnkit.text.pipeline import TextPipeline
from rnnkit.text.vocab import SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN, Vocabulary

MARKERS = {"sentence_start": SENTENCE_START, "sentence_end": SENTENCE_END}


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an npz file; object arrays (pickles) are refused, never loaded."""
    path = Path(path)
    if not path.is_file():
        raise RnnkitError(f"{path}: no such file")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise RnnkitError(f"{path} is not a readable .npz file (an npz is a zip archive of arrays)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise RnnkitError(f"{path} is a single .npy array, not an .npz of the tutorial's weights")
            return {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise RnnkitError(f"{path} is not a readable .npz file ({e})") from None
    except ValueError as e:  # numpy's message for pickled object arrays
        raise RnnkitError(f"{path} holds pickled objects, which rnnkit never loads ({e})") from None


def import_tutorial(npz: str | Path, out: str | Path, *, vocab: str | Path | None = None,
                    vocab_from: str | Path | None = None, bptt_truncate: int = 4, force: bool = False) -> Path:
    if (vocab is None) == (vocab_from is None):
        raise RnnkitError("give the model's vocabulary with either --vocab FILE or --vocab-from PREPARED")
    arrays = read_npz(npz)
    if {"E", "U", "W", "V", "b", "c"} <= arrays.keys():
        return _import_gru(npz, arrays, out, vocab, force)
    missing = [k for k in ("U", "V", "W") if k not in arrays]
    if missing:
        raise RnnkitError(f"{npz} lacks {', '.join(missing)} (it has: {', '.join(arrays) or 'nothing'}); "
                          "the tutorial's RNN is saved with U, V and W")
    U, V, W = arrays["U"], arrays["V"], arrays["W"]
    if U.ndim != 2 or V.ndim != 2 or W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise RnnkitError(f"{npz}: U {U.shape}, V {V.shape} and W {W.shape} are not an RNN's matrices")
    H, C = U.shape
    if W.shape != (H, H) or V.shape != (C, H):
        raise RnnkitError(f"{npz}: U is {U.shape} (hidden {H}, vocabulary {C}), so V must be {(C, H)} and W {(H, H)}; "
                          f"they are {V.shape} and {W.shape}")
    if not all(np.issubdtype(a.dtype, np.floating) for a in (U, V, W)):
        raise RnnkitError(f"{npz}: the weights must be floating-point arrays")

    text = TextPipeline()  # the tutorial's: lower-cased Treebank words
    if vocab_from is not None:
        corpus = PreparedCorpus.open(vocab_from)
        words, source = corpus.vocab.tokens, f"{vocab_from}/vocab.txt"
        text = corpus.text
    else:
        words, source = Vocabulary.load(vocab, UNKNOWN_TOKEN).tokens, str(vocab)
    if len(words) != C:
        raise RnnkitError(f"the vocabulary ({source}) has {len(words):,} tokens but the weights are for {C:,} "
                          f"(U is {U.shape}, V is {V.shape}); give the vocabulary the model was trained with")
    for token in (SENTENCE_START, SENTENCE_END, UNKNOWN_TOKEN):
        if token not in words:
            raise RnnkitError(f"the vocabulary ({source}) has no {token}; the tutorial's model needs it")
    config = LMConfig("rnn", C, H, bptt_truncate=bptt_truncate, dtype=U.dtype.name)
    files = ModelFiles(config, text, Vocabulary(words, UNKNOWN_TOKEN), {"U": U, "V": V, "W": W}, dict(MARKERS),
                       {"imported_from": {"npz": str(npz), "vocab": source}})
    return save_model(out, files, force=force)


def _import_gru(npz, arrays: dict[str, np.ndarray], out, vocab, force: bool) -> Path:
    if vocab is None:
        raise RnnkitError("the tutorial's GRU numbers its words its own way (mask token, UNKNOWN_TOKEN, words); "
                          "give its vocabulary with --vocab FILE")
    E = arrays["E"]
    if E.ndim != 2:
        raise RnnkitError(f"{npz}: E is {E.shape}; the tutorial's GRU has E as hidden × vocabulary")
    H, C = E.shape
    params = {k: arrays[k] for k in "EUWbVc"}
    if not all(np.issubdtype(a.dtype, np.floating) for a in params.values()):
        raise RnnkitError(f"{npz}: the weights must be floating-point arrays")
    words = Vocabulary.load(vocab, UNKNOWN_TOKEN).tokens
    if len(words) != C:
        raise RnnkitError(f"the vocabulary ({vocab}) has {len(words):,} tokens but the weights are for {C:,} "
                          f"(E is {E.shape}); give the vocabulary the model was trained with")
    if words[1] != UNKNOWN_TOKEN:
        raise RnnkitError(f"the vocabulary ({vocab}) has {words[1]!r} at index 1; the tutorial's GRU keeps "
                          f"index 0 for the mask token and 1 for {UNKNOWN_TOKEN}")
    for token in (SENTENCE_START, SENTENCE_END):
        if token not in words:
            raise RnnkitError(f"the vocabulary ({vocab}) has no {token}; the tutorial's model needs it")
    config = LMConfig(CELL, C, H, layers=2, embedding=H, dtype=np.result_type(*params.values()).name)
    check_params(config, params, f"{npz}: not the tutorial's GRU (hidden {H}, vocabulary {C})")
    files = ModelFiles(config, TextPipeline(), Vocabulary(words, UNKNOWN_TOKEN), params,
                       {**MARKERS, "mask_token": words[0]}, {"imported_from": {"npz": str(npz), "vocab": str(vocab)}})
    return save_model(out, files, force=force)
