"""The structure holds: one parameter schema, one engine interface, data flowing one way."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit import RnnkitError
from rnnkit.io.modeldir import ModelFiles, load_model, save_model
from rnnkit.lm.config import LMConfig
from rnnkit.lm.engine import Engine
from rnnkit.models.engine import open_engine
from rnnkit.models.schema import init_params, param_spec
from rnnkit.rank.config import RankerConfig
from rnnkit.rank.engine import RankerEngine
from rnnkit.seq2seq.config import Seq2SeqConfig
from rnnkit.seq2seq.engine import Seq2SeqEngine
from rnnkit.text.pipeline import TextPipeline
from rnnkit.text.vocab import Vocabulary

PACKAGE = Path(__file__).resolve().parents[1] / "rnnkit"

CONFIGS = [
    LMConfig("rnn", 12, 5),
    LMConfig("rnn", 12, 5, layers=3, embedding=4, dtype="float64"),
    LMConfig("rnn", 12, 5, embedding=5, tie=True),
    *[LMConfig(cell, 12, 5, **options) for cell in ("gru", "lstm") for options in (
        {}, {"layers": 2, "embedding": 3}, {"tie": True, "dropout": 0.2}, {"bidirectional": True, "layers": 2},
        {"bidirectional": True, "embedding": 10, "tie": True}, {"dtype": "float64"})],
]


def _vocabulary(size: int) -> Vocabulary:
    return Vocabulary([f"w{i}" for i in range(size - 1)] + ["UNKNOWN_TOKEN"], "UNKNOWN_TOKEN")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.cell}-{c.layers}-{c.embedding}-{c.tie}-"
                                                          f"{c.bidirectional}-{c.dtype}")
def test_param_spec_round_trips_through_save_and_load(tmp_path, config):
    spec = param_spec(config)
    params = init_params(config, np.random.RandomState(0))
    assert list(params) == list(spec) and all(params[k].shape == spec[k].shape for k in spec)
    assert all(p.dtype == np.dtype(config.dtype) for p in params.values())
    save_model(tmp_path / "m", ModelFiles(config, TextPipeline(), _vocabulary(12), params))
    files = load_model(tmp_path / "m", kind="lm")
    assert files.config == config and files.kind == "lm"
    assert set(files.params) == set(spec) and all(np.array_equal(files.params[k], params[k]) for k in spec)
    engines = ["numpy"] + (["torch"] if _has_torch() else [])
    for engine in engines:  # both engines build the model from the schema and give back the same weights
        got = open_engine(config, {k: v.copy() for k, v in params.items()}, engine=engine).params()
        assert set(got) == set(spec) and all(np.array_equal(got[k], params[k]) for k in spec), engine


def test_weights_the_config_does_not_describe_are_refused(tmp_path):
    config = LMConfig("gru", 12, 5)
    params = init_params(config)
    save_model(tmp_path / "m", ModelFiles(config, TextPipeline(), _vocabulary(12), {**params, "V2": params["V"]}))
    with pytest.raises(RnnkitError, match="weights that config.json does not describe: V2"):
        load_model(tmp_path / "m")
    params["W"] = params["W"][:, :4]
    save_model(tmp_path / "n", ModelFiles(config, TextPipeline(), _vocabulary(12), params))
    with pytest.raises(RnnkitError, match=r"W is \(15, 4\), expected \(15, 5\)"):
        load_model(tmp_path / "n")


def test_a_model_of_another_kind_is_refused(tmp_path):
    config = LMConfig("rnn", 12, 5)
    save_model(tmp_path / "m", ModelFiles(config, TextPipeline(), _vocabulary(12), init_params(config)))
    with pytest.raises(RnnkitError, match=r"is a language model \(made by `rnnkit train`\), not a ranker"):
        load_model(tmp_path / "m", kind="ranker")


def test_both_engines_draw_the_same_fresh_weights():
    pytest.importorskip("torch")
    from rnnkit.models.numpy import build as numpy_build
    from rnnkit.models.torch import build as torch_build

    config = LMConfig("lstm", 12, 5, layers=2)
    by_numpy, by_torch = numpy_build(config, seed=3).params, torch_build(config, seed=3).params()
    assert all(np.array_equal(by_numpy[k], by_torch[k]) for k in by_numpy)
    assert np.all(by_numpy["bu"][5:10] > 1 - 5 ** -0.5)  # the forget gate starts 1 higher


def test_the_forget_gates_bias_starts_as_asked_for_lstms_only():
    bound = 5 ** -0.5
    pytorchs = init_params(LMConfig("lstm", 12, 5, forget_bias=0.0), np.random.RandomState(3))
    keras = init_params(LMConfig("lstm", 12, 5), np.random.RandomState(3))
    assert np.all(np.abs(pytorchs["bu"]) <= bound)  # every bias, the forget gate's too, in PyTorch's ±1/√H
    np.testing.assert_allclose(keras["bu"][5:10] - pytorchs["bu"][5:10], 1.0)
    assert np.array_equal(keras["bu"][:5], pytorchs["bu"][:5]) and np.array_equal(keras["bw"], pytorchs["bw"])
    assert LMConfig.from_dict(LMConfig("lstm", 12, 5, forget_bias=0.0).to_dict()).forget_bias == 0.0
    for cell, value in (("gru", 0.0), ("lstm", float("nan"))):
        with pytest.raises(RnnkitError, match=r"--forget-bias (is a finite number, for lstm models|\(forget_bias=\): "
                                              r"nan is not a finite number)"):
            LMConfig(cell, 12, 5, forget_bias=value)


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


KIND_PROTOCOLS = {"lm": (Engine, LMConfig("gru", 12, 5)),
                  "ranker": (RankerEngine, RankerConfig("dual-encoder", 12, hidden=5, dropout=0.0)),
                  "seq2seq": (Seq2SeqEngine, Seq2SeqConfig(12, cell="gru", hidden=5, embedding=None, dropout=0.0))}


@pytest.mark.parametrize("kind", list(KIND_PROTOCOLS))
@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_engines_implement_the_protocol(engine, kind):
    """Each kind's engines have every method of its protocol (the loop's ``Trainable`` ones
    included), with the protocol's parameters."""
    if engine == "torch":
        pytest.importorskip("torch")
    protocol, config = KIND_PROTOCOLS[kind]
    implementation = open_engine(config, init_params(config), engine=engine, optimizer="adam")
    assert isinstance(implementation, protocol) and implementation.name == engine
    members = dict(inspect.getmembers(protocol, inspect.isfunction))
    assert {"params", "load_params", "state_arrays", "load_state_arrays", "train_step", "loss"} <= set(members)
    for name, member in members.items():
        if name.startswith("_"):
            continue
        wanted = list(inspect.signature(member).parameters)
        got = list(inspect.signature(getattr(type(implementation), name)).parameters)
        assert got == wanted, f"{engine}.{name}{got} != {protocol.__name__}.{name}{wanted}"


# ------------------------------------------------------------------------------ imports

def _imports(path: Path) -> set[str]:
    """Every rnnkit module (or ``torch``) a file imports, at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "rnnkit":
                names.update(f"rnnkit.{a.name}" for a in node.names)
    return {n for n in names if n == "rnnkit" or n.startswith("rnnkit.") or n.split(".")[0] == "torch"}


def _modules() -> dict[str, set[str]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        found[module] = _imports(path)
    return found


# Data flows one way: a package imports only from its own level and the levels below. The kinds'
# record (``kinds``) names the parts of each kind and imports them only when asked: it imports
# nothing above the errors. What every kind shares lies below the kinds: the trainer, the
# server's base (each kind's endpoints are in its package) and the command line's common parts
# (each kind's verbs are in its package); the server's app and the command line above them.
LEVELS = {"errors": 0, "_version": 0, "fsutil": 0, "figures": 0, "kinds": 0, "options": 0, "text": 1, "data": 2,
          "models": 3, "io": 4, "trainer": 6, "analysis": 6, "serve": 6, "cli.common": 6, "lm": 7, "rank": 7,
          "seq2seq": 7, "api": 9}
KINDS = {"lm", "rank", "seq2seq"}  # the packages of the built-in kinds
# Outside the core, with the package root: the entry points, and the tutorial's code in compat.
OUTSIDE_THE_CORE = {"rnnkit.__main__", "rnnkit.tutorial", "rnnkit.compat", "rnnkit.cli", "rnnkit.bench"}


def _top(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def _level(module: str) -> int:
    """The level of the longest entry of ``LEVELS`` that ``module`` lies in (99: none)."""
    inside = module.removeprefix("rnnkit.")
    found = [key for key in LEVELS if inside == key or inside.startswith(key + ".")]
    return LEVELS[max(found, key=len)] if found else 99


def _in(module: str, packages: set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _core(module: str) -> bool:
    return module != "rnnkit" and not _in(module, OUTSIDE_THE_CORE)


def test_no_module_imports_the_package_root():
    offenders = {m: sorted(i) for m, imports in _modules().items() if m != "rnnkit"
                 for i in [imports & {"rnnkit", "rnnkit.__version__"}] if i}
    assert not offenders, offenders


def test_the_core_never_imports_the_compat_package():
    offenders = {m: sorted(i for i in imports if _in(i, {"rnnkit.compat"}))
                 for m, imports in _modules().items() if _core(m)}
    assert not {m: i for m, i in offenders.items() if i}


def test_the_trainer_and_the_kinds_reach_models_only_through_the_engine_interface():
    """A kind's engines (its ``numpy_engine`` and ``torch_engine``) build on an engine's own code;
    its trainer, its model and its uses, and the trainer, reach them through ``open_engine`` alone."""
    specific = {"rnnkit.models.numpy", "rnnkit.models.torch", "torch", *(f"rnnkit.{k}.{e}" for k in KINDS
                                                                         for e in ("numpy_engine", "torch_engine"))}
    logging = {"torch.utils.tensorboard"}  # TensorBoard's writer, which PyTorch ships: not an engine
    # torchrun's process group is how the processes of a run talk, whatever the engine: one module opens it.
    processes = {"rnnkit.trainer.distributed": {"torch", "torch.distributed"}}
    offenders = {m: sorted(i for i in imports if _in(i, specific) and i not in logging | processes.get(m, set()))
                 for m, imports in _modules().items() if _in(m, {"rnnkit.trainer", "rnnkit.lm", "rnnkit.rank",
                                                                 "rnnkit.seq2seq"})
                 and m.split(".")[-1] not in ("numpy_engine", "torch_engine")}
    assert not {m: i for m, i in offenders.items() if i}


def test_data_flows_one_way():
    offenders = []
    for module, imports in _modules().items():
        if not _core(module) or _in(module, {"rnnkit.cli"}):
            continue
        level = _level(module)
        offenders += [f"{module} imports {i}" for i in imports if i.startswith("rnnkit.") and _level(i) > level]
    assert not offenders, offenders


def test_no_kind_imports_another_kind():
    offenders = [f"{m} imports {i}" for m, imports in _modules().items() if _top(m) in KINDS
                 for i in imports if _top(i) in KINDS - {_top(m)}]
    assert not offenders, offenders


def test_import_rnnkit_imports_no_kind_package():
    """``import rnnkit`` is light: a kind's package is imported when one of its names is first used."""
    code = ("import sys, rnnkit; print(sorted(m for m in sys.modules if m.split('.')[:2] in "
            "(['rnnkit', 'lm'], ['rnnkit', 'rank'], ['rnnkit', 'seq2seq'])))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent).stdout.strip()
    assert loaded == "[]"
    code = ("import rnnkit; print(rnnkit.LanguageModel.__module__, rnnkit.load_ranker.__module__, "
            "'train' in dir(rnnkit))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=PACKAGE.parent).stdout.split() == ["rnnkit.lm.model", "rnnkit.rank.model", "True"]


# ------------------------------------------------------------------------------ the kinds

def test_every_part_of_every_kind_resolves():
    """The registry names its parts by module and attribute: each one must be there."""
    from rnnkit import kinds

    for name in kinds.names():
        kind = kinds.lookup(name)
        for part in ("config", "train", "open", "serve"):
            assert callable(kind.part(part)), (name, part)
        assert kind.part("config").kind == name and callable(kind.part("config").schema)
        assert all(callable(kind.engine(e)) for e in kind.engines)
        assert all(hasattr(kinds.resolve(m), "register") for m in kind.cli)


def test_a_kind_is_one_package():
    """Every part a kind's record names — config, engines, trainer, model, endpoints, verbs — is
    defined in the kind's own package, and nothing of one kind is defined in the shared packages."""
    from rnnkit import kinds

    for name in kinds.names():
        kind = kinds.lookup(name)
        parts = [kind.part(p) for p in ("config", "train", "open", "serve", "options")]
        parts += [kind.engine(e) for e in kind.engines] + [kinds.resolve(m) for m in kind.cli]
        homes = {getattr(part, "__module__", None) or part.__name__ for part in parts}
        packages = {_top(home) for home in homes}
        assert len(packages) == 1 and packages <= KINDS, (name, sorted(homes))
    shared = [m for m in _modules() if _top(m) in {"models", "data", "serve", "trainer", "cli", "io"}]
    named = {"ranker", "rank", "seq2seq", "lm_"}
    assert not [m for m in shared if any(part in m.split(".")[-1] for part in named)], shared


def test_nothing_but_the_registry_asks_which_kind_a_model_is():
    """No ``if kind == "ranker"`` anywhere: what differs by kind is in the kind's record."""
    import re

    asks = re.compile(r"""kind\s*[!=]=\s*["'](lm|ranker|seq2seq)["']|["'](lm|ranker|seq2seq)["']\s*[!=]=\s*\S*kind""")
    offenders = [f"{path.relative_to(PACKAGE)}:{n}" for path in PACKAGE.rglob("*.py")
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if asks.search(line)]
    assert not offenders, offenders
