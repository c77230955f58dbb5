"""Decoding: greedy and beam search over a batch of sources, on any engine's step.

Both return, per source, the output ids (without the end marker) and the attention weights of
each output step (T, S), or None for a model without attention. ``max_len`` bounds each output
(one number, or one per source): an output that reaches it without ending is cut there.

With ``guard`` (the default) neither lets an output fall into a loop: a token that would repeat
an n-gram of tokens ``LOOP_TIMES`` times, where the source holds that n-gram once at most, is
not chosen. A spelling model's output mirrors its source, so a run like ``ne ne ne ne`` that the
source does not have is a decoder that has lost its place, not a reading.

With a ``window`` (back, ahead), each step attends only from ``back`` positions before to
``ahead`` after where the last step attended most: the alignment of a normalisation is nearly
diagonal, and content alone lets a decoder jump between two copies of a word (``in his Ales and
his Cuppes`` → ``in his cups``). ``WINDOW`` is the models' default, chosen on the validation
split (Chorowski et al. 2015 window their speech decoder's attention the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.seq2seq.engine import Seq2SeqEngine

LOOP_N, LOOP_TIMES = 3, 4  # a 3-gram the fourth time
Window = tuple[int, int]  # positions before and after the last step's focus that a step may attend to
WINDOW: Window = (2, 4)  # docs/tutorial/attention.md, "What pays in fifteen minutes"


def window_mask(weights: np.ndarray | None, window: Window | None) -> np.ndarray | None:
    """(N, S): the source positions each row's next step may attend to — those from ``back``
    before to ``ahead`` after where its last step attended most (None: all of them)."""
    if weights is None or window is None:
        return None
    back, ahead = window
    focus = weights.argmax(axis=1)[:, None]
    at = np.arange(weights.shape[1])[None, :]
    return (at >= focus - back) & (at <= focus + ahead)


@dataclass
class Decoded:
    ids: list[int]
    weights: np.ndarray | None  # (len(ids) + 1, S): the end marker's step too
    log_prob: float  # summed over the output and its end marker

    @property
    def per_token(self) -> float:
        return self.log_prob / (len(self.ids) + 1)


def looping(history: np.ndarray, x: np.ndarray, mask: np.ndarray, C: int, end_id: int) -> np.ndarray | None:
    """(N, C): the tokens that would make each output ``history`` (N, L) hold an n-gram for the
    ``LOOP_TIMES``-th time where its source ``x`` (N, S) holds it once at most (None: no such token)."""
    n, L = LOOP_N, history.shape[1]
    if L < n - 1 + LOOP_TIMES - 1:  # too short to hold the n-gram LOOP_TIMES - 1 times
        return None
    prefix = history[:, L - n + 1:]
    said = _following(np.lib.stride_tricks.sliding_window_view(history, n, axis=1), prefix, C)
    if x.shape[1] < n:  # a source too short to hold an n-gram
        read = np.zeros_like(said)
    else:
        real = np.lib.stride_tricks.sliding_window_view(mask, n, axis=1).all(axis=2)
        read = _following(np.lib.stride_tricks.sliding_window_view(x, n, axis=1), prefix, C, real)
    forbidden = (said >= LOOP_TIMES - 1) & (read <= 1)
    forbidden[:, end_id] = False  # ending is always allowed
    return forbidden


def _following(windows: np.ndarray, prefix: np.ndarray, C: int, real: np.ndarray | None = None) -> np.ndarray:
    """(N, C): how often each token follows ``prefix`` (N, n-1) in each row's n-gram ``windows`` (N, W, n)."""
    match = (windows[:, :, :-1] == prefix[:, None, :]).all(axis=2)
    if real is not None:
        match &= real
    rows, at = np.nonzero(match)
    counts = np.zeros((len(windows), C), np.int64)
    np.add.at(counts, (rows, windows[rows, at, -1]), 1)
    return counts


def _guarded(log_probs: np.ndarray, history: np.ndarray, x: np.ndarray, mask: np.ndarray, end_id: int) -> np.ndarray:
    forbidden = looping(history, x, mask, log_probs.shape[1], end_id)
    return log_probs if forbidden is None else np.where(forbidden, -np.inf, log_probs)


def greedy(engine: Seq2SeqEngine, x: np.ndarray, mask: np.ndarray, start_id: int, end_id: int,
           max_len: int | np.ndarray, guard: bool = True, window: Window | None = None) -> list[Decoded]:
    """The most probable token at every step, until the end marker or ``max_len`` tokens."""
    encoded = engine.encode(x, mask)
    state, B = encoded.state, len(x)
    limits = np.broadcast_to(np.asarray(max_len), (B,))
    tokens = np.full(B, start_id)
    out, steps, total = np.zeros((B, 0), np.int64), [], np.zeros(B)
    done, allowed = np.zeros(B, bool), None
    for step in range(int(limits.max()) + 1):
        log_probs, state, weights = engine.step(tokens, state, encoded, allowed)
        allowed = window_mask(weights, window)
        tokens = (_guarded(log_probs, out, x, mask, end_id) if guard else log_probs).argmax(axis=1)
        total += np.where(done, 0.0, log_probs[np.arange(B), tokens])
        out = np.concatenate([out, np.where(done, end_id, tokens)[:, None]], axis=1)
        steps.append(weights)
        done |= (tokens == end_id) | (step >= limits)
        if done.all():
            break
    results = []
    for i in range(B):
        ends = np.flatnonzero(out[i] == end_id)
        n = min(int(ends[0]) if len(ends) else out.shape[1], int(limits[i]))
        weights = None if steps[0] is None else np.stack([w[i] for w in steps[:n + 1]])
        results.append(Decoded(out[i, :n].tolist(), weights, float(total[i])))
    return results


def beam_search(engine: Seq2SeqEngine, x: np.ndarray, mask: np.ndarray, start_id: int, end_id: int,
                max_len: int | np.ndarray, beam: int, guard: bool = True,
                window: Window | None = None) -> list[Decoded]:
    """The ``beam`` best partial outputs of every source are kept at each step. An output that ends
    among the step's ``beam`` best candidates is kept aside as finished; a source is done when its
    very best candidate ends (or at ``max_len``), and its finished output of the highest
    log-probability per token (the end marker counted) wins. A beam of 1 is greedy decoding."""
    encoded = engine.encode(x, mask)
    B, K = len(x), beam
    limits = np.broadcast_to(np.asarray(max_len), (B,))
    state, encoded = engine.select(encoded.state, encoded, np.repeat(np.arange(B), K))
    scores = np.full((B, K), -np.inf)
    scores[:, 0] = 0.0  # one live hypothesis per source at first
    tokens = np.full(B * K, start_id)
    history = np.zeros((B * K, 0), np.int64)
    attention: np.ndarray | None = None
    finished: list[list[Decoded]] = [[] for _ in range(B)]
    done, allowed = np.zeros(B, bool), None
    x_rows, mask_rows = np.repeat(x, K, axis=0), np.repeat(mask, K, axis=0)  # each hypothesis's source
    for t in range(int(limits.max()) + 1):
        log_probs, state, weights = engine.step(tokens, state, encoded, allowed)
        if guard:
            log_probs = _guarded(log_probs, history, x_rows, mask_rows, end_id)
        C = log_probs.shape[1]
        candidates = (scores[:, :, None] + log_probs.reshape(B, K, C)).reshape(B, K * C)
        order = np.argsort(-candidates, axis=1, kind="stable")[:, : 2 * K]
        parents, chosen = np.zeros((B, K), np.int64), np.full((B, K), end_id)
        new_scores = np.full((B, K), -np.inf)
        for b in np.flatnonzero(~done):
            kept = 0
            for rank, flat in enumerate(order[b]):
                score = candidates[b, flat]
                if not np.isfinite(score) or kept == K:
                    break
                parent, token = divmod(int(flat), C)
                row = b * K + parent
                if token == end_id or t >= limits[b]:  # at the limit, cut short as greedy does
                    if rank < K:
                        w = None
                        if weights is not None:
                            past = attention[row] if attention is not None else weights[:0]
                            w = np.concatenate([past, weights[row][None]])
                        finished[b].append(Decoded(history[row].tolist(), w, float(score)))
                    done[b] |= rank == 0 or t >= limits[b]
                    continue
                parents[b, kept], chosen[b, kept], new_scores[b, kept] = parent, token, score
                kept += 1
        new_scores[done] = -np.inf
        if done.all():
            break
        rows = (np.arange(B)[:, None] * K + parents).reshape(-1)
        history = np.concatenate([history[rows], chosen.reshape(-1, 1)], axis=1)
        if weights is not None:
            step = weights[rows][:, None]
            attention = step if attention is None else np.concatenate([attention[rows], step], axis=1)
        state, encoded = engine.select(state, encoded, rows)
        allowed = window_mask(None if weights is None else weights[rows], window)
        scores, tokens = new_scores, chosen.reshape(-1)
    return [max(f, key=lambda d: d.per_token) for f in finished]
