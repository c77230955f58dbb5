"""Training on many processes (torchrun, DistributedDataParallel over gloo on this CPU), gradient
accumulation and mixed precision: each must give the step a single process takes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import resume_counted

torch = pytest.importorskip("torch")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("this torch has no gloo backend", allow_module_level=True)

# A small LSTM that trains in a second; no dropout and no halving, so that runs can be compared.
TINY = ("--engine", "torch", "--hidden", "16", "--dropout", "0", "--bptt", "10", "--no-halve-lr", "--keep", "last",
        "--precision", "fp32")  # the same arithmetic on every CPU


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    import rnnkit

    tmp = tmp_path_factory.mktemp("distributed")
    rng = np.random.default_rng(0)
    words = "the cat dog bird sat ran on under a mat tree house slowly quickly".split()
    lines = [" ".join(rng.choice(words, rng.integers(3, 12))) + " ." for _ in range(400)]
    (tmp / "text.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rnnkit.prepare(tmp / "text.txt", tmp / "corpus", lines=True, progress=False)


def torchrun(processes: int, *args: str, wait: bool = True,
             verb: tuple[str, ...] = ("train",)) -> subprocess.CompletedProcess | subprocess.Popen:
    """``torchrun … -m rnnkit VERB ARGS`` (``verb``: e.g. ("rank", "train"))."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
               "-m", "rnnkit", *verb, *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on two cores
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def train_once(run_cli, *args) -> dict | None:
    """``rnnkit train ARGS`` in this process; its summary when ARGS ask for --json."""
    status, out, err = run_cli("train", *args)
    assert status == 0, err
    return json.loads(out) if "--json" in args else None


def step_losses(out: Path) -> list[float]:
    """The training loss of each step (a run this short records a point per step)."""
    entries = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [e["train_loss"] for e in entries if "train_loss" in e]


def weights(out: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(out / "weights.safetensors"))


def assert_same_run(a: Path, b: Path, weight_tolerance: float = 1e-5) -> None:
    np.testing.assert_allclose(step_losses(a), step_losses(b), rtol=1e-5)
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_allclose(wa[name], wb[name], rtol=0, atol=weight_tolerance, err_msg=name)


# ------------------------------------------------------------------------------ each process's share

@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("batch_size", [7, 8])
def test_the_shares_of_a_step_are_the_step(corpus, world, batch_size):
    """Over the processes, every row of every step is read once: none twice, none skipped."""
    from rnnkit.data.batching import sentence_batches, stream_batches, stream_tokens
    from rnnkit.trainer.distributed import Placement

    places = [Placement(rank, world) for rank in range(world)]
    stream = stream_tokens(corpus, "train")
    whole = list(stream_batches(stream, batch_size, 10))
    shares = [list(stream_batches(stream, batch_size, 10, rows=p.share(batch_size))) for p in places]
    for step, batch in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([s[step].x for s in shares]), batch.x)
        np.testing.assert_array_equal(np.concatenate([s[step].y for s in shares]), batch.y)

    def sentences(batches):
        return [sorted(tuple(row[m]) for row, m in zip(b.x, b.mask) if m.any()) for b in batches]

    whole = sentences(sentence_batches(corpus, "train", batch_size, shuffle=True, rng=np.random.default_rng(3)))
    shares = [sentences(sentence_batches(corpus, "train", batch_size, shuffle=True, rng=np.random.default_rng(3),
                                         share=p.share)) for p in places]
    assert len(whole) == -(-corpus.num_sentences("train") // batch_size)  # 360 sentences: a short last batch of 7s
    for step, batch in enumerate(whole):
        assert sorted(row for s in shares for row in s[step]) == batch


def test_a_stream_read_lazily_is_the_stream(corpus):
    """The stream read by positions (as a corpus larger than memory is) is the one built whole."""
    from rnnkit.data.batching import stream_tokens

    stream = stream_tokens(corpus, "train")
    ids, offsets = np.asarray(corpus.ids("train")), np.asarray(corpus.offsets("train"))
    whole = [corpus.end_id]
    for a, b in zip(offsets[:-1], offsets[1:]):
        whole += [*ids[a:b], corpus.end_id]
    np.testing.assert_array_equal(stream[:], whole)
    assert len(stream) == len(whole)
    picks = np.random.default_rng(0).integers(0, len(whole), size=(30, 7))
    np.testing.assert_array_equal(stream[picks], np.asarray(whole)[picks])


# ------------------------------------------------------------------------------ torchrun against one process

@pytest.mark.parametrize("mode", [pytest.param("stream", marks=pytest.mark.slow), "sentence"])
def test_two_processes_take_the_steps_of_one(corpus, tmp_path, run_cli, mode):
    """--batch-size 7 is the whole step's (4 rows on one process, 3 on the other); a whole epoch,
    so that sentence mode's short last batch leaves one process a masked row."""
    args = (corpus.path, *TINY, "--mode", mode, "--batch-size", "7", "--epochs", "1")
    train_once(run_cli, *args, "--out", tmp_path / "one")
    done = torchrun(2, *args, "--out", tmp_path / "two", "--json")
    summary = json.loads(done.stdout)  # printed once, by the main process
    assert summary["processes"] == 2 and summary["steps"] == json.loads(
        (tmp_path / "one" / "config.json").read_text())["training"]["steps"]
    assert_same_run(tmp_path / "one", tmp_path / "two")


@pytest.mark.slow
def test_two_processes_train_an_adaptive_softmax_as_one(corpus, tmp_path, run_cli):
    """The second cluster holds the last id alone, the unknown word, which this corpus never has: its
    weights take no part in any step, and DistributedDataParallel must still average the rest."""
    assert corpus.vocab.decode([len(corpus.vocab) - 1]) == [corpus.meta["unk_token"]]
    cutoffs = f"4,{len(corpus.vocab) - 1}"
    args = (corpus.path, *TINY, "--softmax", "adaptive", "--cutoffs", cutoffs, "--batch-size", "7", "--max-steps", "30")
    train_once(run_cli, *args, "--out", tmp_path / "one")
    torchrun(2, *args, "--out", tmp_path / "two")
    assert_same_run(tmp_path / "one", tmp_path / "two")


@pytest.mark.slow
def test_resume_across_numbers_of_processes(corpus, tmp_path, run_cli, steps_taken):
    """A checkpoint holds the whole step's state: 2 processes → 1 and 1 → 2 end where one
    uninterrupted process does (to float tolerance: the two sides sum a step's gradients in a
    different order, so bit equality is not to be had)."""
    args = (corpus.path, *TINY, "--mode", "stream", "--batch-size", "8")
    train_once(run_cli, *args, "--out", tmp_path / "whole", "--max-steps", "10")
    torchrun(2, *args, "--out", tmp_path / "two-one", "--max-steps", "5")
    resume_counted(tmp_path / "two-one", steps_taken, lambda: train_once(
        run_cli, *args, "--out", tmp_path / "two-one", "--max-steps", "10", "--resume", "--json"))
    train_once(run_cli, *args, "--out", tmp_path / "one-two", "--max-steps", "5")
    done = torchrun(2, *args, "--out", tmp_path / "one-two", "--max-steps", "10", "--resume", "--json")
    assert json.loads(done.stdout)["resumed_from"] == 5  # its processes are not this one's to count
    for resumed in ("two-one", "one-two"):
        assert_same_run(tmp_path / "whole", tmp_path / resumed)


@pytest.mark.slow
def test_sigterm_to_torchrun_checkpoints_once(corpus, tmp_path, run_cli):
    out = tmp_path / "m"
    run = torchrun(2, corpus.path, *TINY, "--batch-size", "8", "--out", out, "--max-steps", "1000000", wait=False)
    checkpoint = out / "checkpoint" / "state.json"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline:  # the step-0 evaluation's
        time.sleep(0.2)
    time.sleep(2)  # some steps
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=60)
    assert err.count("checkpoint saved: continue with the same command and --resume") == 1, err[-3000:]
    step = json.loads(checkpoint.read_text())["position"]["step"]
    assert step > 0
    train_once(run_cli, corpus.path, *TINY, "--batch-size", "8", "--out", out, "--max-steps", step + 2, "--resume")
    assert json.loads((out / "config.json").read_text())["training"]["steps"] == step + 2


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_a_process_that_dies_stops_the_others(corpus, tmp_path):
    """torchrun's agent sees the dead worker and stops the rest; the survivor says what happened."""
    run = torchrun(2, corpus.path, *TINY, "--batch-size", "8", "--out", tmp_path / "m", "--max-steps", "1000000",
                   wait=False)
    deadline = time.monotonic() + 120
    while not (tmp_path / "m" / "checkpoint").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    workers = _children(run.pid)
    assert len(workers) == 2
    os.kill(max(workers), signal.SIGKILL)
    _, err = run.communicate(timeout=60)
    assert run.returncode != 0
    # the survivor's own lines come before torchrun's summary: show both ends when it is missing
    assert "a process of this run stopped, so this one cannot go on" in err, f"{err[:4000]}\n...\n{err[-2000:]}"


# ------------------------------------------------------------------------------ gradient accumulation

@pytest.mark.parametrize("mode", ["stream", "sentence"])
def test_gradient_accumulation_takes_the_same_step(corpus, tmp_path, run_cli, mode):
    """Four micro-batches of 2 rows make the step that one batch of 8 makes."""
    args = (corpus.path, *TINY, "--mode", mode, "--batch-size", "8", "--max-steps", "12")
    train_once(run_cli, *args, "--out", tmp_path / "whole")
    train_once(run_cli, *args, "--out", tmp_path / "micro", "--grad-accum", "4")
    assert_same_run(tmp_path / "whole", tmp_path / "micro")


def test_gradient_accumulation_is_refused_where_it_cannot_be(corpus, tmp_path, run_cli):
    status, _, err = run_cli("train", corpus.path, "--out", tmp_path / "m", "--engine", "numpy", "--grad-accum", "2")
    assert status == 2 and "--grad-accum needs the torch engine" in err
    status, _, err = run_cli("train", corpus.path, "--out", tmp_path / "m", *TINY, "--batch-size", "2",
                             "--grad-accum", "4")
    assert status == 2 and "--batch-size 2 (the whole step's) is too small" in err
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------------------ mixed precision

def test_fp16_is_refused_on_the_cpu_and_bf16_with_the_numpy_engine(corpus, tmp_path, run_cli):
    status, _, err = run_cli("train", corpus.path, "--out", tmp_path / "m", *TINY[:-2], "--device", "cpu",
                             "--precision", "fp16")
    assert status == 2 and "--precision fp16 is for CUDA (PyTorch's CPU LSTM has no fp16)" in err
    status, _, err = run_cli("train", corpus.path, "--out", tmp_path / "m", "--engine", "numpy", "--precision", "bf16")
    assert status == 2 and "--precision bf16 is for the torch engine" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_the_cpu_has_it(corpus, monkeypatch, native):
    from rnnkit.lm import make_config
    from rnnkit.trainer import options

    monkeypatch.setattr(options, "cpu_has_bf16", lambda: native)
    assert make_config(engine="torch", device="cpu").resolve(corpus).precision == ("bf16" if native else "fp32")
    for fp32 in (dict(engine="numpy"), dict(engine="torch", dtype="float64"), dict(recipe="seed", engine="torch")):
        assert make_config(**fp32).resolve(corpus).precision == "fp32"


def test_a_bf16_stream_run_checkpoints_its_state_and_resumes_exactly(corpus, tmp_path):
    """Under autocast the carried state is bf16; the checkpoint holds it in float32, exactly."""
    from rnnkit.io.modeldir import load_model
    from rnnkit.lm import train

    options = dict(engine="torch", device="cpu", hidden=16, dropout=0.0, bptt=10, batch_size=8, precision="bf16",
                   evaluate_every=0.2, keep="last", log=lambda _: None, progress=False)
    train(corpus, tmp_path / "whole", max_steps=40, **options)
    train(corpus, tmp_path / "parts", max_steps=17, **options)
    train(corpus, tmp_path / "parts", max_steps=40, resume=True, **options)
    whole, parts = load_model(tmp_path / "whole").params, load_model(tmp_path / "parts").params
    assert all(np.array_equal(whole[k], parts[k]) for k in whole)


def test_the_fused_loss_reduces_in_float32_under_autocast():
    """Under bf16 autocast the output product is bf16, but the loss is the float32 loss of those
    logits: a bf16 sum over the vocabulary would be off by about 1%."""
    from rnnkit.models.torch.lm import SoftmaxCrossEntropy

    g = torch.Generator().manual_seed(0)
    states = torch.randn(64, 32, generator=g, requires_grad=True)
    V = torch.randn(3000, 32, generator=g, requires_grad=True)
    bias = torch.randn(3000, generator=g, requires_grad=True)
    targets = torch.randint(0, 3000, (64,), generator=g)
    weights = torch.ones(64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = SoftmaxCrossEntropy.apply(states, V, bias, targets, weights)
    logits = torch.addmm(bias.bfloat16(), states.bfloat16(), V.bfloat16().t()).float()
    exact = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    assert loss.dtype == torch.float32
    assert abs(loss.item() - exact.item()) <= 1e-5 * exact.item()
    loss.backward()
    reference = [t.detach().clone().requires_grad_() for t in (states, V, bias)]
    torch.nn.functional.cross_entropy(reference[0] @ reference[1].t() + reference[2], targets, reduction="sum").backward()
    for mixed, full in zip((states, V, bias), reference):
        assert mixed.grad.dtype == torch.float32
        assert torch.linalg.norm(mixed.grad - full.grad) <= 0.02 * torch.linalg.norm(full.grad)


def test_a_confident_targets_error_keeps_its_precision_under_autocast():
    """At a target the model is sure of, the output error p − 1 is tiny; taken from bf16
    probabilities it would be rounded away (bf16 steps by 1/256 just below 1)."""
    from rnnkit.models.torch.lm import SoftmaxCrossEntropy

    V = torch.zeros(500, 4)
    V[7, 0] = 1.0
    states = torch.tensor([[12.0, 0.0, 0.0, 0.0]])  # the logit of word 7 is 12, the others 0: p(7) ≈ 0.9969
    bias = torch.zeros(500, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        SoftmaxCrossEntropy.apply(states, V, bias, torch.tensor([7]), torch.ones(1)).backward()
    exact = torch.softmax(torch.tensor([12.0] + [0.0] * 499), 0)[0].item() - 1
    assert abs(bias.grad[7].item() - exact) <= 0.01 * abs(exact)


@pytest.mark.parametrize("mixed", [False, True])
def test_a_hopeless_targets_loss_is_finite_and_exact(mixed):
    """A target 120 nats below the best word has a probability (e⁻¹²⁰) below float32's and bf16's
    smallest number: its loss comes from the logits, 120 nats, not log 0."""
    from rnnkit.models.torch.lm import SoftmaxCrossEntropy

    V = torch.zeros(50, 2)
    V[3, 0], V[9, 0] = 1.0, -1.0
    states = torch.tensor([[60.0, 0.0], [1.0, 0.0]], requires_grad=True)  # row 0: word 3 at +60, word 9 at −60
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
        loss = SoftmaxCrossEntropy.apply(states, V, None, torch.tensor([9, 3]), torch.tensor([1.0, 0.0]))
    assert abs(loss.item() - 120.0) <= 1e-4 * 120
    loss.backward()
    # the gradient (p − onehot)·V is V₃ − V₉ = 2 in its first column
    assert torch.isfinite(states.grad).all() and abs(states.grad[0, 0].item() - 2.0) <= 1e-3


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("precision, device", [("bf16", "cpu"), pytest.param("bf16", "cuda", marks=CUDA),
                                               pytest.param("fp16", "cuda", marks=CUDA)])
def test_a_mixed_precision_step_follows_the_float32_step(precision, device):
    """The engine's own path: autocast, and fp16's gradient scaler (torch's CPU LSTM has no fp16)."""
    from rnnkit.data.batching import Batch
    from rnnkit.lm.config import LMConfig
    from rnnkit.lm.torch_engine import TorchEngine
    from rnnkit.models.schema import init_params

    config = LMConfig("lstm", 200, 32, tie=True)
    params = init_params(config, np.random.RandomState(0))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 200, (8, 12)), rng.integers(0, 200, (8, 12))
    mask = np.ones(x.shape, dtype=bool)
    engines = {p: TorchEngine(config, params, device=device, optimizer="adam", precision=p) for p in ("fp32", precision)}
    batch = Batch(x, y, mask)
    losses = {p: [e.train_step(batch, 0.01, 1 / x.size)[0] for _ in range(3)] for p, e in engines.items()}
    np.testing.assert_allclose(losses[precision], losses["fp32"], rtol=2e-2)
    assert losses[precision][-1] < losses[precision][0]
    arrays = engines[precision].state_arrays()
    assert ("scaler.scale" in arrays) == (precision == "fp16")
