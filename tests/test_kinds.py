"""A kind is one record: a fourth kind, defined in this file alone (a bag-of-words classifier over
``label<TAB>text`` lines), trains with the one trainer, saves, loads, answers and serves through
the registry, with no change to any file of rnnkit."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest

import rnnkit
from rnnkit import kinds
from rnnkit.io.modeldir import ModelFiles, load_model
from rnnkit.models.network import Config
from rnnkit.models.numpy.engine import NumpyTrainable
from rnnkit.models.schema import ParamSpec, init_params
from rnnkit.text.pipeline import TextPipeline
from rnnkit.text.vocab import build_vocabulary
from rnnkit.trainer import Job, LoopOptions, open_trainer, run
from tests.conftest import resume_counted

# ------------------------------------------------------------------------------ the kind


@dataclass(frozen=True)
class BowConfig(Config):
    kind: ClassVar[str] = "bow"

    vocab_size: int
    classes: int
    dtype: str = "float64"
    dropout: float = 0.0

    def schema(self) -> dict[str, ParamSpec]:
        return {"W": ParamSpec((self.classes, self.vocab_size), 0.1), "b": ParamSpec((self.classes,))}


@dataclass
class BowBatch:
    x: np.ndarray  # (B, V) word counts
    y: np.ndarray  # (B,) labels

    @property
    def size(self) -> int:
        return len(self.x)

    def rows(self, part: slice) -> BowBatch:
        return BowBatch(self.x[part], self.y[part])


class BowEngine(NumpyTrainable):
    """Softmax regression on word counts, with its hand-written gradient."""

    def log_probs(self, x: np.ndarray) -> np.ndarray:
        logits = x @ self.weights["W"].T + self.weights["b"]
        return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)

    def loss(self, batch: BowBatch, carry: None = None) -> tuple[float, None]:
        return float(-self.log_probs(batch.x)[np.arange(batch.size), batch.y].sum()), None

    def train_step(self, batch: BowBatch, lr: float, scale: float, carry: None = None) -> tuple[float, None]:
        log_probs = self.log_probs(batch.x)
        error = np.exp(log_probs)
        error[np.arange(batch.size), batch.y] -= 1.0
        self._update({"W": error.T @ batch.x, "b": error.sum(axis=0)}, lr, scale)
        return float(-log_probs[np.arange(batch.size), batch.y].sum()), None


def word_counts(vocab, texts: list[str]) -> np.ndarray:
    x = np.zeros((len(texts), len(vocab)))
    for row, text in enumerate(texts):
        np.add.at(x[row], vocab.encode(text.split()), 1.0)
    return x


def read_examples(path: Path) -> tuple[list[str], list[str]]:
    labels, texts = zip(*(line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines()))
    return list(labels), list(texts)


class BowClassifier:
    """The model ready to use: what ``rnnkit.load`` returns for this kind."""

    def __init__(self, files: ModelFiles, *, engine: str = "auto", device: str = "auto") -> None:
        from rnnkit.models.engine import open_engine

        self.config, self.vocab, self.labels = files.config, files.vocab, files.tokens["labels"]
        self.engine = open_engine(files.config, files.params, engine=engine, device=device)

    def classify(self, texts: list[str]) -> list[dict[str, Any]]:
        probs = np.exp(self.engine.log_probs(word_counts(self.vocab, texts)))
        return [{"label": self.labels[int(p.argmax())], "prob": float(p.max())} for p in probs]


@dataclass
class BowTask:
    engine: BowEngine
    train: BowBatch
    valid: BowBatch
    batch_size: int
    unit: str = "examples"
    eval_split: str = "valid"

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.train.size / self.batch_size)

    def batches(self, rng: np.random.Generator, start: int) -> Iterator[BowBatch]:
        order = rng.permutation(self.train.size)
        for a in range(start * self.batch_size, self.train.size, self.batch_size):
            chosen = order[a:a + self.batch_size]
            yield BowBatch(self.train.x[chosen], self.train.y[chosen])

    def initial_carry(self) -> None:
        return None

    def train_step(self, batch: BowBatch, lr: float, carry: None) -> tuple[float, int, None]:
        loss, _ = self.engine.train_step(batch, lr, 1.0 / batch.size)
        return loss, batch.size, None

    def evaluate(self) -> dict[str, float]:
        loss, _ = self.engine.loss(self.valid)
        accuracy = float((self.engine.log_probs(self.valid.x).argmax(axis=1) == self.valid.y).mean())
        return {"loss": loss / self.valid.size, "accuracy": accuracy}


@dataclass
class BowOptions(LoopOptions):
    pass


def train_bow(data: Path, out: Path, *, resume: bool = False, force: bool = False, log=lambda _: None,
              progress: bool = False, tensorboard: bool = False, backend: str | None = None,
              **options: Any) -> dict[str, Any]:
    """This kind's trainer: the one trainer, given the task; its options checked as every kind's."""
    cfg = BowOptions.make(**{"engine": "numpy", **options})
    cfg.check_loop(None)

    def setup(placement, checkpoint, log) -> Job:
        (train_labels, train_texts), (valid_labels, valid_texts) = (read_examples(Path(data) / f"{s}.bow.tsv")
                                                                    for s in ("train", "valid"))
        vocab = build_vocabulary([t.split() for t in train_texts], 0)
        labels = sorted(set(train_labels))
        config = BowConfig(len(vocab), len(labels))
        engine = open_trainer(config, init_params(config, np.random.RandomState(cfg.seed)), cfg, placement)
        def batch(labels_, texts):
            return BowBatch(word_counts(vocab, texts), np.array([labels.index(label) for label in labels_]))

        task = BowTask(engine, batch(train_labels, train_texts), batch(valid_labels, valid_texts), cfg.batch_size)
        files = lambda summary: ModelFiles(config, TextPipeline(), vocab, engine.params(),  # noqa: E731
                                           {"labels": labels}, {"training": summary})
        return Job(task, files, describe=f"a bag of {len(vocab)} words, {len(labels)} classes")

    return run(out, cfg, setup, resume=resume, force=force, log=log, progress=progress, tensorboard=tensorboard,
               backend=backend)


def register_verbs(verbs: Any) -> None:
    """This kind's verbs: ``rnnkit bow train DATA --out OUT``, with every trainer flag."""
    from rnnkit.cli.common import add_training_flags, add_verb, run_training, train_arguments

    def cmd_train(args):
        def start(log):
            return train_bow(args.data, args.out, log=log, **train_arguments(args, BowOptions))

        return run_training(args, start,
                            lambda summary: f"Wrote {summary['out']}: valid accuracy {summary['valid_accuracy']:.2f}")

    actions = verbs.add_parser("bow", help="a bag-of-words classifier").add_subparsers(dest="bow_verb", required=True)
    p = add_verb(actions, "train", cmd_train, "train a bag-of-words classifier on label<TAB>text lines")
    p.add_argument("data", metavar="DATA", help="a directory with train.bow.tsv and valid.bow.tsv")
    p.add_argument("--out", required=True)
    add_training_flags(p, BowOptions)


def served_bow():
    """The server's view: one endpoint, /classify (a class made when asked: FastAPI is optional)."""
    from pydantic import BaseModel, Field

    from rnnkit.serve.models import Served

    class ClassifyRequest(BaseModel):
        texts: list[str] = Field(min_length=1)

    class Served_(Served):
        endpoints = {"classify": ClassifyRequest}

        async def classify(self, request: ClassifyRequest, context) -> list[dict[str, Any]]:
            await self.check_texts(context, request.texts, "texts")
            return await context.on_model(self.model.classify, request.texts)

    return Served_


# ------------------------------------------------------------------------------ the tests


@pytest.fixture
def bow_kind(monkeypatch):
    """The kind, registered for one test."""
    monkeypatch.setattr(kinds, "_KINDS", dict(kinds._KINDS))
    kinds.register(kinds.Kind("bow", "bag-of-words classifier", "rnnkit bow train", config=BowConfig,
                              engines={"numpy": BowEngine}, train=train_bow, open=BowClassifier, options=BowOptions,
                              data=("train.bow.tsv",), cli=(SimpleNamespace(register=register_verbs),),
                              serve=lambda *args: served_bow()(*args)))
    yield


@pytest.fixture
def examples(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    words = {"sport": "ball goal match team score run", "food": "bread soup cake apple salt cook"}
    for split, n in (("train", 300), ("valid", 60)):
        lines = []
        for _ in range(n):
            label = str(rng.choice(list(words)))
            mixed = [*rng.choice(words[label].split(), 4), *rng.choice("the a of and it".split(), 3)]
            lines.append(f"{label}\t{' '.join(rng.permutation(mixed))}")
        (tmp_path / f"{split}.bow.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def test_a_kind_defined_outside_trains_saves_loads_and_answers(bow_kind, examples, tmp_path, steps_taken):
    train = kinds.lookup("bow").part("train")  # through the registry, as for any kind
    summary = train(examples, tmp_path / "m", lr=0.5, batch_size=16, epochs=3, optimizer="sgd", clip=None)
    assert summary["valid_accuracy"] > 0.95 and summary["processes"] == 1
    files = load_model(tmp_path / "m")
    assert files.kind == "bow" and files.config == BowConfig(files.config.vocab_size, 2)
    model = rnnkit.load(tmp_path / "m")
    assert isinstance(model, BowClassifier)
    answers = model.classify(["the ball and the goal", "a cake of bread"])
    assert [a["label"] for a in answers] == ["sport", "food"] and all(a["prob"] > 0.5 for a in answers)
    # Resumed by the one trainer, the kind takes only the remaining steps, and ends where one run does.
    options = dict(lr=0.5, batch_size=16, optimizer="sgd", clip=None, evaluate_every=0.2, keep="last")
    train_bow(examples, tmp_path / "whole", max_steps=30, **options)
    train_bow(examples, tmp_path / "parts", max_steps=7, **options)
    resume_counted(tmp_path / "parts", steps_taken,
                   lambda: train_bow(examples, tmp_path / "parts", max_steps=30, resume=True, **options))
    whole, parts = load_model(tmp_path / "whole").params, load_model(tmp_path / "parts").params
    assert all(np.array_equal(whole[k], parts[k]) for k in whole)


def test_a_kind_defined_outside_trains_from_the_command_line_and_from_rnnkit_train(bow_kind, examples, tmp_path,
                                                                                  run_cli):
    """Its verbs join the command, its flags come from the declarations, and ``rnnkit.train`` knows its data."""
    flags = ["--lr", "0.5", "--batch-size", "16", "--epochs", "3", "--optimizer", "sgd"]
    status, out, err = run_cli("bow", "train", examples, "--out", tmp_path / "cli", *flags)
    assert status == 0 and out.startswith(f"Wrote {tmp_path / 'cli'}: valid accuracy"), err
    status, out, err = run_cli("bow", "train", examples, "--out", tmp_path / "bad", "--lr", "nan")
    assert status == 2 and "--lr: nan is not a finite number" in err and len(err.splitlines()) == 1
    model = rnnkit.train(examples, tmp_path / "python", lr=0.5, batch_size=16, epochs=3, optimizer="sgd")
    assert isinstance(model, BowClassifier) and model.summary["valid_accuracy"] > 0.95
    with pytest.raises(rnnkit.RnnkitError, match=r"--batch-size \(batch_size=\): 0 is too small"):
        rnnkit.train(examples, tmp_path / "refused", batch_size=0)
    assert not (tmp_path / "bad").exists() and not (tmp_path / "refused").exists()


def test_a_kind_defined_outside_is_served(bow_kind, examples, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from rnnkit.serve import create_app, open_served

    train_bow(examples, tmp_path / "m", lr=0.5, batch_size=16, epochs=3, optimizer="sgd", clip=None)
    served = {"bow": open_served(f"bow={tmp_path / 'm'}", engine="numpy")}
    with TestClient(create_app(served)) as client:
        listed = client.get("/v1/models").json()["models"]
        assert listed[0]["kind"] == "bow" and listed[0]["engine"] == "numpy"
        answer = client.post("/v1/models/bow/classify", json={"texts": ["the team will score a goal"]}).json()
        assert answer["results"][0]["label"] == "sport"
        assert client.post("/v1/models/bow/classify", json={"text": "x"}).status_code == 422
        assert "classify" in client.get("/openapi.json").json()["paths"]["/v1/models/{name}/classify"]["post"][
            "operationId"]


def test_an_unknown_kind_is_one_clear_error(tmp_path, bow_kind, examples):
    train_bow(examples, tmp_path / "m", lr=0.5, batch_size=16, epochs=1, optimizer="sgd", clip=None)
    kinds._KINDS.pop("bow")
    with pytest.raises(rnnkit.RnnkitError, match="unknown model kind 'bow'; this rnnkit knows lm, ranker, seq2seq"):
        rnnkit.load(tmp_path / "m")
