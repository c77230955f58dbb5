"""The cross-encoder's matching head in numpy: a context and a response read together (ESIM-style).

For each pair, A (Tc, D) holds the context's top-layer states and B (Tr, D) the response's, real
steps marked by their masks. Each side attends to the other, word by word (Chen et al. 2017):

    E = A Bᵀ,  α = softmax of E over the response's steps,  β = softmax of E over the context's
    Ã = α B   (the part of the response that each context word matches),   B̃ = βᵀ A
    f_A = [A ⊙ Ã, A − Ã],  f_B = [B ⊙ B̃, B − B̃]         (agreement and difference, word by word)
    v = [max f_A, mean f_A, max f_B, mean f_B]           (over each side's real steps)
    s = uᵀ tanh(Qᵀ v + q)

Backward, from ∂L/∂s: ∂u = Σ ∂s·h, ∂z = ∂s·u ⊙ (1 − h²), ∂Q = vᵀ ∂z, ∂v = ∂z Qᵀ; each max gives
its error to the step that held it, each mean 1/n to every real step; through the features
∂A += ∂f₁ ⊙ Ã + ∂f₂ and ∂Ã = ∂f₁ ⊙ A − ∂f₂ (B likewise); ∂α = ∂Ã Bᵀ, ∂B += αᵀ ∂Ã, ∂β = A ∂B̃ᵀ,
∂A += β ∂B̃; each softmax: ∂E += p ⊙ (∂p − Σ p ⊙ ∂p) along its axis; and ∂A += ∂E B, ∂B += ∂Eᵀ A.
Masked scores are a large negative number rather than −∞, so that a padded row's softmax is
uniform, not NaN; what a padded step computes is never pooled, so it gets no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MASKED = -1e30  # a masked score: exp of it, less any real score, is exactly 0


@dataclass
class Match:
    """What ``match`` keeps for ``match_backward``."""

    A: np.ndarray
    B: np.ndarray
    valid: np.ndarray  # (P, Tc, Tr): both steps real
    alpha: np.ndarray
    beta: np.ndarray
    A_att: np.ndarray  # Ã
    B_att: np.ndarray  # B̃
    pooled: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # per side: (argmax, real steps)
    v: np.ndarray
    h: np.ndarray


def softmax_masked(E: np.ndarray, valid: np.ndarray, axis: int) -> np.ndarray:
    E = np.where(valid, E, MASKED)
    e = np.exp(E - E.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _features(X: np.ndarray, X_att: np.ndarray) -> np.ndarray:
    return np.concatenate([X * X_att, X - X_att], axis=2)


def _pool(f: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """[max over the real steps, mean over them] (P, 2F), and what the backward pass needs."""
    argmax = np.where(mask[:, :, None], f, -np.inf).argmax(axis=1)
    largest = np.take_along_axis(f, argmax[:, None, :], axis=1)[:, 0]
    count = mask.sum(axis=1, keepdims=True).astype(f.dtype)
    mean = (f * mask[:, :, None]).sum(axis=1) / count
    return np.concatenate([largest, mean], axis=1), (argmax, mask / count)


def _pool_backward(d: np.ndarray, shape: tuple[int, ...], kept: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    argmax, weights = kept
    d_max, d_mean = np.split(d, 2, axis=1)
    df = d_mean[:, None, :] * weights[:, :, None]
    np.add.at(df, (np.arange(shape[0])[:, None], argmax, np.arange(shape[2])[None, :]), d_max)
    return df


def match(params: dict[str, np.ndarray], A: np.ndarray, mask_a: np.ndarray, B: np.ndarray,
          mask_b: np.ndarray) -> tuple[np.ndarray, Match]:
    """The scores (P,) of P pairs: context states ``A`` (P, Tc, D) and response states ``B`` (P, Tr, D)."""
    valid = mask_a[:, :, None] & mask_b[:, None, :]
    E = A @ B.transpose(0, 2, 1)
    alpha, beta = softmax_masked(E, valid, 2), softmax_masked(E, valid, 1)
    A_att, B_att = alpha @ B, beta.transpose(0, 2, 1) @ A
    va, kept_a = _pool(_features(A, A_att), mask_a)
    vb, kept_b = _pool(_features(B, B_att), mask_b)
    v = np.concatenate([va, vb], axis=1)
    h = np.tanh(v @ params["x.Q"] + params["x.q"])
    return h @ params["x.u"], Match(A, B, valid, alpha, beta, A_att, B_att, (kept_a, kept_b), v, h)


def match_backward(params: dict[str, np.ndarray], m: Match, ds: np.ndarray,
                   grads: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Add the head's gradients to ``grads``; return the errors at the states (∂A, ∂B)."""
    grads["x.u"] = grads.get("x.u", 0) + m.h.T @ ds
    dz = ds[:, None] * params["x.u"] * (1.0 - m.h ** 2)
    grads["x.Q"] = grads.get("x.Q", 0) + m.v.T @ dz
    grads["x.q"] = grads.get("x.q", 0) + dz.sum(axis=0)
    dva, dvb = np.split(dz @ params["x.Q"].T, 2, axis=1)
    D = m.A.shape[2]
    sides = []
    for X, X_att, dv, kept in ((m.A, m.A_att, dva, m.pooled[0]), (m.B, m.B_att, dvb, m.pooled[1])):
        df = _pool_backward(dv, (X.shape[0], X.shape[1], 2 * D), kept)
        d_product, d_difference = df[:, :, :D], df[:, :, D:]
        sides.append((d_product * X_att + d_difference, d_product * X - d_difference))
    (dA, dA_att), (dB, dB_att) = sides
    d_alpha = dA_att @ m.B.transpose(0, 2, 1)
    dB = dB + m.alpha.transpose(0, 2, 1) @ dA_att
    d_beta = m.A @ dB_att.transpose(0, 2, 1)
    dA = dA + m.beta @ dB_att
    dE = (m.alpha * (d_alpha - (m.alpha * d_alpha).sum(axis=2, keepdims=True))
          + m.beta * (d_beta - (m.beta * d_beta).sum(axis=1, keepdims=True)))
    return dA + dE @ m.B, dB + dE.transpose(0, 2, 1) @ m.A
