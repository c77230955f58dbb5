"""Each model kind as the server sees it: its name, what ``/v1/models`` says of it, and the
functions its endpoints call (plain Python on the model's thread; the app does the HTTP)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.io.modeldir import read_config


@dataclass
class Served:
    name: str
    kind: str  # lm, ranker or seq2seq
    model: Any
    path: Path
    repository: list[str] = field(default_factory=list)  # a ranker's responses to search (server-side only)

    def describe(self) -> dict[str, Any]:
        engine = getattr(self.model, "engine", None)
        vocab = getattr(self.model, "vocab", None) or getattr(getattr(self.model, "ids", None), "vocab", None)
        return {"name": self.name, "kind": self.kind, "vocab_size": len(vocab) if vocab is not None else None,
                "engine": getattr(engine, "name", None), "device": str(getattr(engine, "device", "cpu")),
                "level": getattr(getattr(self.model, "text", None), "level", None),
                "repository": len(self.repository) if self.kind == "ranker" else None}

    def token_count(self, text: str) -> int:
        """Tokens of ``text`` as the model reads it (for the per-text limit)."""
        if self.kind == "lm":
            return len(self.model.tokenize(text))
        return len(text.split()) if self.kind == "ranker" else len(self.model.ids.text.split([text])[0])

    # -------------------------------------------------------------- language models

    def score(self, sentences: list[str], per_token: bool) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.model.score(sentences, per_token=per_token)]

    def generate(self, **options: Any) -> list[str]:
        return self.model.generate(**options)

    def rerank(self, groups: list[list[str]], length_norm: bool) -> list[dict[str, Any]]:
        return self.model.rerank(groups, length_norm=length_norm)

    # -------------------------------------------------------------- rankers and seq2seq

    def rank(self, context: str, candidates: Sequence[str] | None, top: int) -> list[dict[str, Any]]:
        if candidates is not None:
            return self.model.rank(context, list(candidates))[:top]
        if not self.repository:
            raise RnnkitError(f"{self.name} has no response repository: give candidates, or start the server "
                              f"with --responses {self.name}=DATA")
        return self.model.rank_repository(context, self.repository, top=top)

    def translate(self, sources: list[str], beam: int, attention: bool) -> list[dict[str, Any]]:
        results = []
        for t in self.model.decode(sources, beam=beam):
            entry = {"source": t.source, "output": t.output, "log_prob": t.log_prob}
            if attention:
                entry.update(source_tokens=t.source_tokens, output_tokens=t.output_tokens,
                             attention=None if t.weights is None else t.weights.round(4).tolist())
            results.append(entry)
        return results


def open_served(spec: str, *, engine: str = "auto", device: str = "auto") -> Served:
    """A model directory given as ``PATH`` or ``NAME=PATH``; its kind comes from its config."""
    name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
    path_ = Path(path)
    name = name or path_.resolve().name
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise RnnkitError(f"model name {name!r}: use letters, digits, '-', '_' and '.' (give NAME=PATH)")
    kind = read_config(path_).get("kind", "lm")
    if kind == "lm":
        from rnnkit.use.lm import load

        model = load(path_, engine=engine, device=device)
    elif kind == "ranker":
        from rnnkit.rank.model import load_ranker

        model = load_ranker(path_, engine=engine, device=device)
    elif kind == "seq2seq":
        from rnnkit.seq2seq.model import load_seq2seq

        model = load_seq2seq(path_, engine=engine, device=device)
    else:
        raise RnnkitError(f"{path}: a model of kind {kind!r}, which rnnkit serve does not know")
    return Served(name, kind, model, path_)


def attach_responses(served: dict[str, Served], spec: str) -> None:
    """``NAME=DATA``: the training responses of ranking dataset DATA become ranker NAME's repository."""
    from rnnkit.rank.data import read_train

    name, _, data = spec.partition("=")
    if name not in served or served[name].kind != "ranker" or not data:
        raise RnnkitError(f"--responses {spec!r}: give NAME=DATA for a ranker being served")
    _, responses, labels = read_train(data)
    served[name].repository = list(dict.fromkeys(r for r, label in zip(responses, labels) if label == 1))
