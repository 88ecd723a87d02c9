"""Character-LSTM language-model training throughput: jdrop (JAX) vs PyTorch, on CPU.

LSTM language models of the issue-13 sizes (``--sizes 2x512 3x1024``: layers x units,
embedding = units, vocab 65), batch 32, unroll 64, full training step (forward + backward +
Adam update), tokens per second:

* ``jax`` -- :class:`jdrop.models._rnn_lm.RNNLanguageModel`, variational dropout (input, between
  layers, output and recurrent, 0.25 each), one jitted step with donated state, fused gates,
  input matmul hoisted out of the ``lax.scan``; "custom VJP" is the default LSTM layer
  (:func:`jdrop.nn._scan.lstm_layer`, weight gradients as one matmul after the reverse
  loop), "autodiff scan" differentiates the plain scan; ``unroll`` is ``lax.scan``'s.
* ``torch_fused`` -- ``torch.nn.LSTM`` (fused kernels; dropout 0.25 between layers only, the
  only dropout it supports, plus input and output dropout outside), ``set_num_threads(cores)``.
* ``torch_loop`` -- ``torch.nn.LSTMCell`` in a Python loop with the same variational masks
  as the JAX model (the usual way to get Gal's dropout in PyTorch).

All run side by side in one process, interleaved over repeats; the table gives medians.

    python -m experiments.benchmarks.bench_lstm_lm            # full run (writes
                                                               # results/bench_lstm_lm.md)
    python -m experiments.benchmarks.bench_lstm_lm --quick    # smoke run (seconds)
    python -m experiments.benchmarks.bench_lstm_lm --threads 1  # one core each (robust to
                                                                 # a shared, loaded machine)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from experiments.benchmarks.timing import single_thread_xla_if_asked

single_thread_xla_if_asked()  # before JAX starts: XLA reads its flags once

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

from jdrop.models._rnn_lm import LMConfig, RNNLanguageModel  # noqa: E402

VOCAB = 65
RATE = 0.25
RESULTS = Path(__file__).resolve().parent / "results"


def jax_trainer(layers: int, hidden: int, batch: int, seq: int, unroll: int,
                lstm_vjp: bool = True, seed: int = 0):
    """Returns ``run(num_steps)`` that trains the jdrop model and blocks on the result."""
    config = LMConfig(
        vocab_size=VOCAB,
        embed_size=hidden,
        hidden_sizes=(hidden,) * layers,
        dropout_mode="variational",
        input_dropout=RATE,
        hidden_dropout=RATE,
        output_dropout=RATE,
        recurrent_dropout=RATE,
        unroll=unroll,
    )
    model = RNNLanguageModel(config, rngs=nnx.Rngs(seed))
    model.rnn.lstm_vjp = lstm_vjp
    graphdef, params = nnx.split(model)
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)
    rnn_state = model.init_state(batch)
    key = jax.random.key(seed)

    def loss_fn(params, rnn_state, inputs, targets, step_key):
        logits, new_state = nnx.merge(graphdef, params)(inputs, key=step_key, state=rnn_state)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
        return loss, new_state

    def train_step(params, opt_state, rnn_state, inputs, targets, step):
        step_key = jax.random.fold_in(key, step)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, rnn_state), grads = grad_fn(params, rnn_state, inputs, targets, step_key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, rnn_state, loss

    step_fn = jax.jit(train_step, donate_argnums=(0, 1, 2))
    rng = np.random.default_rng(seed)
    data = jnp.asarray(rng.integers(0, VOCAB, (batch, seq + 1)), jnp.int32)
    inputs, targets = data[:, :-1], data[:, 1:]
    carry = {"params": params, "opt": opt_state, "rnn": rnn_state, "step": 0}

    def run(num_steps: int) -> float:
        loss = None
        for _ in range(num_steps):
            carry["params"], carry["opt"], carry["rnn"], loss = step_fn(
                carry["params"], carry["opt"], carry["rnn"], inputs, targets, carry["step"]
            )
            carry["step"] += 1
        return float(loss)

    return run


def torch_fused_trainer(layers: int, hidden: int, batch: int, seq: int, seed: int = 0):
    """``torch.nn.LSTM`` with dropout between layers, input/output dropout outside."""
    import torch

    torch.manual_seed(seed)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(VOCAB, hidden)
            self.lstm = torch.nn.LSTM(hidden, hidden, layers, batch_first=True, dropout=RATE)
            self.drop = torch.nn.Dropout(RATE)
            self.decoder = torch.nn.Linear(hidden, VOCAB)

        def forward(self, ids, state):
            y, state = self.lstm(self.drop(self.embedding(ids)), state)
            return self.decoder(self.drop(y)), state

    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.randint(0, VOCAB, (batch, seq + 1))
    inputs, targets = data[:, :-1], data[:, 1:]
    zeros = torch.zeros(layers, batch, hidden)
    state = [(zeros, zeros.clone())]

    def run(num_steps: int) -> float:
        loss = None
        for _ in range(num_steps):
            h, c = state[0]
            logits, (h, c) = model(inputs, (h.detach(), c.detach()))
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state[0] = (h, c)
        return loss.item()

    return run


def torch_loop_trainer(layers: int, hidden: int, batch: int, seq: int, seed: int = 0):
    """``torch.nn.LSTMCell`` in a Python loop with variational (per-sequence) masks."""
    import torch

    torch.manual_seed(seed)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(VOCAB, hidden)
            self.cells = torch.nn.ModuleList(
                torch.nn.LSTMCell(hidden, hidden) for _ in range(layers)
            )
            self.decoder = torch.nn.Linear(hidden, VOCAB)

        @staticmethod
        def mask(shape):
            return torch.bernoulli(torch.full(shape, 1 - RATE)) / (1 - RATE)

        def forward(self, ids, state):
            x = self.embedding(ids)  # (B, T, E)
            new_state = []
            for layer, cell in enumerate(self.cells):
                x = x * self.mask((x.shape[0], 1, x.shape[2]))  # input / between layers
                h, c = state[layer]
                rec = self.mask(h.shape)
                outputs = []
                for t in range(x.shape[1]):
                    h, c = cell(x[:, t], (h * rec, c))
                    outputs.append(h)
                x = torch.stack(outputs, 1)
                new_state.append((h, c))
            x = x * self.mask((x.shape[0], 1, x.shape[2]))
            return self.decoder(x), new_state

    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.randint(0, VOCAB, (batch, seq + 1))
    inputs, targets = data[:, :-1], data[:, 1:]
    zeros = torch.zeros(batch, hidden)
    state = [[(zeros, zeros) for _ in range(layers)]]

    def run(num_steps: int) -> float:
        loss = None
        for _ in range(num_steps):
            detached = [(h.detach(), c.detach()) for h, c in state[0]]
            logits, state[0] = model(inputs, detached)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return loss.item()

    return run


def gemm_table(sizes, threads: int) -> str:
    """XLA:CPU vs PyTorch GFLOP/s on the LSTM's matmul shapes (is the step matmul-bound?).

    Per size: the recurrent ``(batch, H) @ (H, 4H)`` and the hoisted input projection
    ``(batch * seq, H) @ (H, 4H)``; 50 dependent products in one jitted ``fori_loop`` (so
    XLA cannot hoist them) against 50 ``torch.mm`` calls; medians of 7.
    """
    import torch

    rows = ["| shape | XLA GFLOP/s | torch GFLOP/s | XLA / torch |", "|---|---:|---:|---:|"]
    for _, hidden in sizes:
        for m in (32, 32 * 64):
            a = np.random.default_rng(0).random((m, hidden), np.float32)
            b = np.random.default_rng(1).random((hidden, 4 * hidden), np.float32)
            ja, jb = jnp.asarray(a), jnp.asarray(b)
            loop = jax.jit(lambda x, y: jax.lax.fori_loop(
                0, 50, lambda i, c: c + ((x + c) @ y)[0, 0] * 1e-9, 0.0))
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)

            def torch_loop(ta=ta, tb=tb):
                for _ in range(50):
                    torch.mm(ta, tb)

            times = {"xla": [], "torch": []}
            loop(ja, jb).block_until_ready()
            torch_loop()
            for _ in range(7):
                start = time.perf_counter()
                loop(ja, jb).block_until_ready()
                times["xla"].append(time.perf_counter() - start)
                start = time.perf_counter()
                torch_loop()
                times["torch"].append(time.perf_counter() - start)
            flops = 50 * 2 * m * hidden * 4 * hidden
            xla, tor = (flops / statistics.median(times[k]) / 1e9 for k in ("xla", "torch"))
            rows.append(f"| ({m}, {hidden}) @ ({hidden}, {4 * hidden}) | {xla:.1f} | "
                        f"{tor:.1f} | {xla / tor:.2f}x |")
    return f"Matmuls alone, {threads} threads:\n\n" + "\n".join(rows)


def _size(text: str) -> tuple[int, int]:
    layers, _, hidden = text.partition("x")
    if not (layers.isdigit() and hidden.isdigit()):
        raise argparse.ArgumentTypeError(f"--sizes takes LAYERSxUNITS, e.g. 2x512; got {text!r}")
    return int(layers), int(hidden)


def bench_size(layers, hidden, args, cores) -> tuple[str, list[dict]]:
    """Times every implementation at one size, interleaved; returns (markdown, rows)."""
    load_before = _load()
    trainers = {
        f"jax jdrop, custom VJP, unroll={u}": jax_trainer(layers, hidden, args.batch, args.seq, u)
        for u in args.unroll
    }
    trainers["jax jdrop, autodiff scan, unroll=1"] = jax_trainer(
        layers, hidden, args.batch, args.seq, 1, lstm_vjp=False
    )
    if not args.no_torch:
        trainers["torch.nn.LSTM (fused)"] = torch_fused_trainer(
            layers, hidden, args.batch, args.seq
        )
        trainers["torch LSTMCell loop (variational)"] = torch_loop_trainer(
            layers, hidden, args.batch, args.seq
        )

    for run in trainers.values():  # compile / warm up
        run(2)
    tokens = args.batch * args.seq * args.steps
    rates: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(args.repeats):
        for name, run in trainers.items():
            start = time.perf_counter()
            run(args.steps)
            rates[name].append(tokens / (time.perf_counter() - start))

    lines = [
        f"LSTM LM training, {layers}x{hidden}, vocab {VOCAB}, batch {args.batch}, unroll "
        f"{args.seq}, {cores} threads, jax {jax.__version__}; median of {args.repeats} x "
        f"{args.steps} steps; load average before/after: {load_before} / {_load()}",
        "",
    ]
    medians = {name: statistics.median(values) for name, values in rates.items()}
    refs = [name for name in medians if name.startswith("torch")]
    header = ["implementation", "tokens/s (median)", "best", *(f"vs {name}" for name in refs)]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    rows = []
    for name, median in medians.items():
        best = f"{max(rates[name]):.0f}"
        ratios = {ref: median / medians[ref] for ref in refs}
        cells = [name, f"{median:.0f}", best, *(f"{r:.2f}x" for r in ratios.values())]
        lines.append("| " + " | ".join(cells) + " |")
        rows.append({"size": f"{layers}x{hidden}", "implementation": name,
                     "tokens_per_s": rates[name], "median": median,
                     "vs": {ref: round(r, 4) for ref, r in ratios.items()}})
    return "\n".join(lines), rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (nothing written)")
    parser.add_argument("--sizes", type=_size, nargs="+", default=[(2, 512), (3, 1024)],
                        help="LAYERSxUNITS, e.g. 2x512 3x1024")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="training steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats")
    parser.add_argument("--unroll", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--no-torch", action="store_true", help="JAX variants only")
    parser.add_argument("--no-gemm", action="store_true", help="skip the matmul-only table")
    parser.add_argument("--gemm-only", action="store_true",
                        help="only the matmul table (written to results/bench_lstm_gemm.md)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for both frameworks (default: all cores; 1 also makes XLA single-threaded)",
    )
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats, args.unroll, args.sizes = 2, 2, [1], [(1, 32)]

    cores = args.threads or os.cpu_count() or 1
    if not args.no_torch:
        import torch

        torch.set_num_threads(cores)
    if args.gemm_only:
        table = gemm_table(args.sizes, cores)
        print(table)
        if not args.quick:
            command = "python -m experiments.benchmarks.bench_lstm_lm " + " ".join(sys.argv[1:])
            (RESULTS / "bench_lstm_gemm.md").write_text(
                f"# LSTM matmul shapes: XLA:CPU vs PyTorch\n\n    {command.strip()}\n\n"
                f"{table}\n")
        return
    tables, rows = [], []
    for layers, hidden in args.sizes:
        table, size_rows = bench_size(layers, hidden, args, cores)
        print(table, flush=True)
        tables.append(table)
        rows += size_rows
    if not (args.no_torch or args.no_gemm):
        table = gemm_table(args.sizes, cores)
        print(table, flush=True)
        tables.append(table)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        command = "python -m experiments.benchmarks.bench_lstm_lm " + " ".join(sys.argv[1:])
        (RESULTS / "bench_lstm_lm.md").write_text(
            f"# LSTM LM training throughput\n\n    {command.strip()}\n\n"
            + "\n\n".join(tables) + "\n"
        )
        (RESULTS / "bench_lstm_lm.json").write_text(json.dumps(rows, indent=1) + "\n")


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


if __name__ == "__main__":
    main()
