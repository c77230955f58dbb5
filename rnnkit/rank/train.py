"""Training a ranker: the baselines are fitted, the dual encoder trained by the common loop
(its options and presets: ``rnnkit.rank.config``)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.batching import held_out_sample
from rnnkit.errors import RnnkitError
from rnnkit.io.modeldir import ModelFiles, load_model, save_model
from rnnkit.models.network import gated_names
from rnnkit.models.schema import init_params
from rnnkit.rank.config import RankerConfig, RankTrainConfig
from rnnkit.rank.data import (
    PairBatch,
    PairData,
    TextIds,
    distinct_tokens,
    read_eval,
    read_train,
    training_pairs,
)
from rnnkit.rank.engine import RankerEngine
from rnnkit.rank.metrics import per_example, recall_values, truth_first
from rnnkit.rank.model import (
    BM25Ranker,
    DualEncoderRanker,
    HybridRanker,
    LexicalRanker,
    RandomRanker,
    Ranker,
    RerankingRanker,
    TfidfRanker,
    best_weight,
    fit_mix,
    tfidf_vectorizer,
    with_prior,
)
from rnnkit.rank.negatives import HardNegatives, mine
from rnnkit.text.pipeline import TextPipeline
from rnnkit.text.vocab import Vocabulary, build_vocabulary
from rnnkit.trainer.checkpoint import one_run_at_a_time, open_run
from rnnkit.trainer.distributed import Placement, launched
from rnnkit.trainer.runner import Job, open_trainer, run


class RankTask:
    """The dual encoder's training pairs and validation, for the loop."""

    unit = "pairs"
    eval_split = "valid"
    finish_evaluations = 0  # a hybrid's or reranker's stages are weighed after the loop: about two evaluations

    def __init__(self, pairs: PairData, cfg: RankTrainConfig, engine: RankerEngine, ranker: Ranker,
                 valid: tuple[list[str], list[list[str]]], placement: Placement = Placement()) -> None:
        self.pairs, self.cfg, self.engine, self.ranker, self.placement = pairs, cfg, engine, ranker, placement
        self.valid = validation_sample(valid, cfg.eval_rows, cfg.seed)
        self.steps_per_epoch = math.ceil(len(pairs) / cfg.batch_size)

    def batches(self, rng: np.random.Generator, start: int) -> Iterator[PairBatch]:
        return self.pairs.batches(self.cfg.batch_size, rng, start)

    def initial_carry(self) -> None:
        return None

    def train_step(self, batch: PairBatch, lr: float, carry: None) -> tuple[float, int, None]:
        # The mean over the whole step's pairs; DistributedDataParallel averages the processes' gradients.
        mine = self.placement.own(batch)
        loss, _ = self.engine.train_step(mine, lr, self.placement.world_size / batch.size)
        return loss, mine.size, None

    def evaluate(self) -> dict[str, float]:
        """``loss``: the cross-entropy of the true response among its 10 candidates (softmax over
        their scores), whatever the training objective; and R@1."""
        if not isinstance(self.ranker, RerankingRanker):
            return ranking_metrics(self.ranker.score_rows(*self.valid))
        # a reranker is validated as it learns, on both parts: the dual encoder's loss plus the head's
        dual, head = self.ranker.first.dual.score_rows(*self.valid), self.ranker.match_rows(*self.valid)
        return {**ranking_metrics(dual + head), "loss": ranking_metrics(dual)["loss"] + ranking_metrics(head)["loss"]}


def validation_sample(valid: tuple[list[str], list[list[str]]], rows: int,
                      seed: int) -> tuple[list[str], list[list[str]]]:
    """Up to ``rows`` validation rows drawn at random (the same ones every evaluation)."""
    chosen = held_out_sample(len(valid[0]), rows, seed)
    return [valid[0][i] for i in chosen], [valid[1][i] for i in chosen]


def ranking_metrics(scores: np.ndarray) -> dict[str, float]:
    log_z = np.logaddexp.reduce(scores, axis=1)
    return {"loss": float((log_z - scores[:, 0]).mean()), "R@1": float(per_example(scores)["R@1"].mean())}


def encoder_from_lm(path: str | Path, model: RankerConfig, vocab: Vocabulary, params: dict[str, np.ndarray]) -> int:
    """Start the encoder from a language model's layers (Lowe et al. started from pretrained word
    vectors): its recurrent layers, the forward direction's, are copied, and its embedding word by
    word (matched by token; words it lacks keep their fresh vectors). Returns the words matched."""
    files = load_model(path, kind="lm")
    lm, encoder = files.config, model.encoder()
    if (lm.cell, lm.hidden, lm.layers, lm.embedding) != (encoder.cell, encoder.hidden, encoder.layers,
                                                         encoder.embedding):
        raise RnnkitError(f"{path} is a {lm.cell} of {lm.layers} layer(s), hidden {lm.hidden}, embedding "
                          f"{lm.embedding}; the ranker needs the same: pass --cell, --layers, --hidden, --embedding")
    ours, theirs = zip(*[(i, files.vocab.index[t]) for i, t in enumerate(vocab.tokens) if t in files.vocab.index])
    params["E"][:, list(ours)] = files.params["E"][:, list(theirs)]
    for k in range(lm.layers):
        for name in gated_names(k):
            params[name][...] = files.params[name]
    return len(ours)


def _read(data: str | Path, cfg: RankTrainConfig, log: Callable[[str], None]):
    contexts, responses, labels = read_train(data)
    valid = read_eval(data, "valid")
    text = TextPipeline()
    tokens = distinct_tokens(text, [*contexts, *responses])
    vocab = build_vocabulary(tokens.values(), cfg.vocab_size)
    log(f"read {len(contexts):,} training rows and {len(valid[0]):,} validation rows; vocabulary {len(vocab):,}")
    return TextIds(text, vocab, cfg.max_context, cfg.max_response), tokens, (contexts, responses, labels), valid


@one_run_at_a_time
def train_ranker(data: str | Path, out: str | Path, config: RankTrainConfig | None = None, *, resume: bool = False,
                 force: bool = False, log: Callable[[str], None] = print, progress: bool | None = None,
                 tensorboard: bool = False, backend: str | None = None, **options: Any) -> dict[str, Any]:
    """Fit a baseline or train a dual encoder on a ranking dataset; write its model directory and
    return a summary (with the validation loss and R@1). Started by ``torchrun``, each process
    trains its share of every batch."""
    started = time.perf_counter()  # --max-time bounds the whole command
    cfg = (config or RankTrainConfig.make(**options)).resolve()
    if not cfg.model_config(2).learned:
        if launched():
            raise RnnkitError(f"the {cfg.model} baseline is fitted in one pass, not trained: run it without torchrun")
        checkpoint = open_run(Path(out), resume=resume, force=force)
        if checkpoint is not None:
            cfg.check_resumable(checkpoint[0]["config"])
        return _fit_baseline(data, Path(out), cfg, log)

    def setup(placement: Placement, checkpoint: Any, log: Callable[[str], None]) -> Job:
        ids, tokens, rows, valid = _read(data, cfg, log)
        model = cfg.model_config(len(ids.vocab))
        params = init_params(model, np.random.RandomState(cfg.seed))
        if cfg.encoder_from and checkpoint is None:
            matched = encoder_from_lm(cfg.encoder_from, model, ids.vocab, params)
            log(f"encoder from {cfg.encoder_from}: its layers, and the embeddings of {matched:,} of "
                f"{len(ids.vocab):,} words")
        engine = open_trainer(model, params, cfg, placement)
        pairs = training_pairs(ids, tokens, *rows, in_batch=model.objective == "in-batch")
        dual = DualEncoderRanker(model, ids, engine)
        lexical = fit_lexical(model.lexical, model, ids, tokens, rows) if model.model != "dual-encoder" else None
        if cfg.hard_negatives:
            tfidf = lexical[0] if lexical and model.lexical == "tfidf" else fit_lexical("tfidf", model, ids, tokens,
                                                                                         rows)[0]
            pairs.hard = mine_hard_negatives(ids, tokens, rows, tfidf, cfg, log)
        scored = RerankingRanker(model, HybridRanker(model, dual, lexical[0])) if model.reranks else dual
        task = RankTask(pairs, cfg, engine, scored, valid, placement)
        task.finish_evaluations = 0 if lexical is None else 2

        def files(summary: dict[str, Any]) -> ModelFiles:
            final, weights = model, engine.params()
            if lexical is not None:  # the lexical part, the prior and the head, weighted on validation (figures in
                final, prior = weigh_stages(model, dual, lexical[0], task.valid, summary)  # the summary)
                weights = {**weights, **lexical[1], **prior}
            training = {**asdict(cfg), "data": str(data), **summary}
            return ModelFiles(final, ids.text, ids.vocab, weights, info={"training": training})

        return Job(task, files, meta={"data": str(data)}, summary={"model": cfg.model})

    return run(out, cfg, setup, resume=resume, force=force, log=log, progress=progress, tensorboard=tensorboard,
               backend=backend, started=started)


def mine_hard_negatives(ids: TextIds, tokens: dict[str, list[str]], rows: tuple[list[str], list[str], np.ndarray],
                        tfidf: TfidfRanker, cfg: RankTrainConfig, log: Callable[[str], None]) -> HardNegatives:
    """Each true pair's hard negatives (``rnnkit.rank.negatives``), as response ids."""
    started = time.perf_counter()
    contexts, responses, labels = rows
    true = np.flatnonzero(labels == 1)

    def tokens_of(text: str) -> list[str]:  # a context's first turn is in no row as a response
        return tokens[text] if text in tokens else ids.tokens([text])[0]

    texts, of = mine([contexts[i] for i in true], [responses[i] for i in true],
                     lambda t: tfidf.vectorizer.transform([tokens_of(x) for x in t]), cfg.hard_negatives, cfg.seed)
    pool = [ids.response_ids(tokens_of(t)) for t in texts]
    log(f"hard negatives: {sum(map(len, of)) / len(of):.1f} for each context, from {len(texts):,} texts "
        f"({time.perf_counter() - started:.0f} s)")
    return HardNegatives(pool, [np.array(o) for o in of], cfg.hard_negatives)


def fit_lexical(name: str, model: RankerConfig, ids: TextIds, tokens: dict[str, list[str]],
                rows: tuple[list[str], list[str], np.ndarray]) -> tuple[LexicalRanker, dict[str, np.ndarray]]:
    """TF-IDF or BM25 fitted on the training contexts and true responses (each distinct text
    once): the ranker, and its arrays for the model directory."""
    contexts, responses, labels = rows
    texts = [tokens[t] for t in dict.fromkeys([*contexts, *(r for r, label in zip(responses, labels) if label == 1)])]
    if name == "bm25":
        bm25 = BM25Ranker.fit(model, ids, texts)
        return bm25, {"idf": bm25.idf, "avgdl": np.array([bm25.avgdl])}
    vectorizer = tfidf_vectorizer(ids)
    vectorizer.fit(texts)
    idf = vectorizer.idf_.astype(np.float64)
    return TfidfRanker(model, ids, idf), {"idf": idf}


def weigh_stages(model: RankerConfig, dual: DualEncoderRanker, lexical: LexicalRanker,
                 valid: tuple[list[str], list[list[str]]],
                 summary: dict[str, Any]) -> tuple[RankerConfig, dict[str, np.ndarray]]:
    """A hybrid's or reranker's config with the weights that rank the validation sample best: the
    lexical score's beside the learned one (``mix``), the prior's (``fit_prior``), then, for a
    reranker, that hybrid's beside its head's (``rerank_mix``); and the prior's arrays. Each
    stage's R@1 joins ``summary``."""
    learned, words = dual.score_rows(*valid), lexical.score_rows(*valid)
    hybrid = HybridRanker(replace(model, mix=fit_mix(learned, words)), dual, lexical)
    summary.update({"mix": hybrid.config.mix, "valid_R@1_learned": ranking_metrics(learned)["R@1"]})
    hybrid, prior = fit_prior(hybrid, valid, summary)
    scores = hybrid.score_rows(*valid) if prior else learned + hybrid.config.mix * words
    final = hybrid.config
    if model.reranks:
        head = RerankingRanker(final, hybrid).match_rows(*valid)
        final = replace(final, rerank_mix=fit_mix(head, scores))
        summary.update({"rerank_mix": final.rerank_mix, "valid_R@1_hybrid": ranking_metrics(scores)["R@1"],
                        "valid_R@1_head": ranking_metrics(head)["R@1"]})
        scores = head + final.rerank_mix * scores
    summary["valid_R@1"] = ranking_metrics(scores)["R@1"]
    return final, prior


PRIOR_WEIGHTS = np.arange(0.0, 2.0625, 0.125)  # the prior's weights tried: none, then up to 2 by eighths
ONE_OF = 100  # the prior is weighed in validation's 1-of-100 (Henderson et al. 2019), nearer a repository's ranking


def fit_prior(hybrid: HybridRanker, valid: tuple[list[str], list[list[str]]],
              summary: dict[str, Any]) -> tuple[HybridRanker, dict[str, np.ndarray]]:
    """The hybrid with the prior against responses that score high whatever was said, if it pays:
    each pair's score less ``prior`` times the response's score for the average validation context
    (scores are linear in the context, so that is the score for the mean encoding and the mean
    lexical query), ``prior`` the weight that ranks validation's 1-of-100 best. Returns the hybrid
    (as it was when no weight pays) and the prior's arrays; the weight and the 1-of-100 R@1 without
    and with it join ``summary`` (``prior_fit``)."""
    dual, lexical, mix = hybrid.dual, hybrid.lexical, hybrid.config.mix
    contexts, truths = valid[0], [row[0] for row in valid[1]]
    n = min(ONE_OF, len(contexts))
    if n < 2:
        return hybrid, {}
    encoded, queries = dual.encode_contexts(contexts), lexical.queries(contexts)
    responses, documents = dual.encode_responses(truths), lexical.documents(truths)
    average = {"prior.context": encoded.mean(axis=0, dtype=np.float64),
               "prior.query": np.asarray(queries.mean(axis=0), dtype=np.float64).ravel()}
    scores = dual.engine.score_matrix(encoded, responses) + mix * (queries @ documents.T).toarray()
    typical = (dual.engine.score_matrix(average["prior.context"][None].astype(encoded.dtype), responses)[0]
               + mix * (documents @ average["prior.query"]))
    blocks = range(0, len(contexts) - n + 1, n)  # batches of n: each context against their true responses
    rows = np.concatenate([truth_first(scores[a:a + n, a:a + n]) for a in blocks])
    penalty = np.concatenate([truth_first(np.broadcast_to(-typical[a:a + n], (n, n))) for a in blocks])
    weight = best_weight(rows, penalty, PRIOR_WEIGHTS)
    summary["prior_fit"] = {"weight": weight, "one_of": n, "R@1_without": float(recall_values(rows, 1).mean()),
                            "R@1_with": float(recall_values(rows + weight * penalty, 1).mean())}
    if not weight:
        return hybrid, {}
    weighed = HybridRanker(replace(hybrid.config, prior=weight), dual, lexical)
    return with_prior(weighed, average["prior.context"], average["prior.query"]), average


def _fit_baseline(data: str | Path, out: Path, cfg: RankTrainConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """TF-IDF and BM25 fitted on the training texts (``fit_lexical``); random needs nothing."""
    ids, tokens, rows, valid = _read(data, cfg, log)
    model = cfg.model_config(len(ids.vocab))
    info = {"training": {**asdict(cfg), "data": str(data)}}
    if model.model == "random":
        ranker, params = RandomRanker(model, ids, cfg.seed), {}
    else:
        ranker, params = fit_lexical(model.model, model, ids, tokens, rows)
    metrics = ranking_metrics(ranker.score_rows(*validation_sample(valid, cfg.eval_rows, cfg.seed)))
    summary = {f"valid_{k}": v for k, v in metrics.items()} | {"model": cfg.model, "out": str(out)}
    info["training"].update(summary)
    save_model(out, ModelFiles(model, ids.text, ids.vocab, params, info=info), force=True)  # open_run checked out
    return summary
