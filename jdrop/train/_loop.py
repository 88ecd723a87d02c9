"""The training loop shared by every experiment: classification, regression and LM.

One call trains for ``config.num_epochs`` epochs (or until early stopping or
``config.max_steps``), evaluates, logs, checkpoints, and resumes from the workdir's latest
checkpoint when there is one. The pieces:

* data: ``batches_fn(epoch, start_step)`` returns an iterable of this process's rows of
  each global batch (dicts of numpy arrays), starting at batch ``start_step`` of the
  epoch: e.g. ``lambda e, s: jdrop.data.batches(ds, 128, seed=0, epoch=e, start_step=s,
  process_index=jax.process_index(), process_count=jax.process_count())``. It must give
  the same batches every time it is called with the same arguments.
* the model: an NNX module called inside ``loss_fn``; the caller's module is not changed,
  the trained one is returned.
* ``loss_fn(model, batch, key, carry) -> (loss, (metrics, new_carry))``, described in
  :mod:`jdrop.train.step`. ``carry`` starts each epoch as ``init_carry()`` (``None``
  without ``init_carry``) and then is what the previous step returned.

Resuming is exact: step ``t`` uses ``fold_in(key, t)``, and a checkpoint holds the
parameters, BatchNorm statistics, optimiser state, step, key, data position (epoch and
step within it), the carry, and the early-stopping state. A run stopped at any step and
resumed ends with bitwise the same parameters as one never stopped.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from jdrop.train._checkpoint import Checkpointer
from jdrop.train._config import TrainConfig
from jdrop.train._distributed import global_batch, make_mesh, replicate, shard_rows
from jdrop.train._early_stopping import EarlyStoppingState
from jdrop.train._metrics_log import MetricsWriter, RunningMean, progress_bar
from jdrop.train._regularizers import Filter, is_kernel
from jdrop.train._state import TrainState, create_train_state, merge_model, split_model
from jdrop.train._step import LossFn, eval_fn_from_loss, make_eval_step, make_train_step

__all__ = ["TrainResult", "evaluate", "train"]

_END = object()
BatchesFn = Callable[[int, int], Iterable[dict]]


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
      model: the trained model (the best evaluation's with ``config.restore_best``).
      state: the final :class:`~jdrop.train.TrainState` (replicated global arrays).
      history: the records this call logged (the same as the lines it appended to
        ``metrics.jsonl``).
      early_stopping: the early-stopping state (``None`` without early stopping).
      epoch: the epochs completed.
      step: the optimiser updates done (the global step).
      stopped_early: whether early stopping ended the run.
    """

    model: nnx.Module
    state: TrainState
    history: list[dict]
    early_stopping: EarlyStoppingState | None
    epoch: int
    step: int
    stopped_early: bool


def _fresh_carry(init_carry, mesh):
    if init_carry is None:
        return None
    return shard_rows(init_carry(), mesh)


def _rows(batch) -> int:
    return int(jax.tree.leaves(batch)[0].shape[0])


def _run_eval(eval_step, params, model_state, batches, init_carry, mesh) -> dict[str, float]:
    mean = RunningMean()
    carry = _fresh_carry(init_carry, mesh)
    for local in batches:
        batch = global_batch(local, mesh)
        metrics, carry = eval_step(params, model_state, batch, carry)
        mean.add(metrics, weight=_rows(batch))
    if not mean:
        raise ValueError("an evaluation set yielded no batch")
    return mean.result()


def evaluate(
    model: nnx.Module,
    loss_fn: LossFn,
    batches: Iterable[dict],
    *,
    eval_fn: Callable | None = None,
    init_carry: Callable[[], object] | None = None,
    mesh: Mesh | None = None,
) -> dict[str, float]:
    """Metrics of ``model`` over ``batches``, averaged with each batch weighted by its rows.

    Args:
      model: the NNX model (not changed).
      loss_fn: the training ``loss_fn``; called with ``key=None`` (deterministic).
      batches: this process's rows of each global batch (dicts of numpy arrays).
      eval_fn: ``(model, batch, carry) -> (metrics, new_carry)`` to use instead of
        ``loss_fn``.
      init_carry: ``() -> carry`` for the first batch (global arrays' host values).
      mesh: the device mesh (default: all devices).

    Returns:
      ``{"loss": ..., <loss_fn's metrics>}`` as Python floats.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from flax import nnx
      >>> def loss_fn(model, batch, key, carry):
      ...     error = model(batch["inputs"]) - batch["targets"]
      ...     return jnp.mean(error**2), ({"max_error": jnp.abs(error).max()}, carry)
      >>> model = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
      >>> model.kernel.value = jnp.full((1, 1), 2.0); model.bias.value = jnp.zeros(1)
      >>> x = np.ones((8, 1), np.float32)
      >>> evaluate(model, loss_fn, [{"inputs": x, "targets": 3 * x}])
      {'loss': 1.0, 'max_error': 1.0}
    """
    mesh = make_mesh() if mesh is None else mesh
    graphdef, params, model_state = split_model(model)
    params, model_state = replicate((params, model_state), mesh)
    step = make_eval_step(graphdef, eval_fn or eval_fn_from_loss(loss_fn), mesh)
    return _run_eval(step, params, model_state, batches, init_carry, mesh)


def _check_args(loss_fn, batches_fn, config, eval_sets, init_carry, workdir):
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a jdrop.train.TrainConfig, got {type(config).__name__}")
    for name, fn in (("loss_fn", loss_fn), ("batches_fn", batches_fn)):
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {name}={fn!r}")
    if init_carry is not None and not callable(init_carry):
        raise TypeError(f"init_carry must be a callable () -> carry, got {init_carry!r}")
    if not isinstance(eval_sets, Mapping):
        raise TypeError(f"eval_sets must be a mapping name -> batches callable, got {eval_sets!r}")
    for name, fn in eval_sets.items():
        if name == "train" or not callable(fn):
            raise ValueError(
                f"eval_sets maps names other than 'train' to callables () -> batches, got "
                f"eval_sets[{name!r}]={fn!r}"
            )
    rule = config.early_stopping
    if rule is not None and rule.split not in eval_sets:
        raise ValueError(
            f"early_stopping watches split={rule.split!r}, which is not in eval_sets "
            f"(names: {sorted(eval_sets)})"
        )
    if config.checkpoint_every is not None and workdir is None:
        raise ValueError(
            f"checkpoint_every={config.checkpoint_every} needs a workdir, got workdir=None"
        )


def train(
    model: nnx.Module,
    tx: optax.GradientTransformation,
    loss_fn: LossFn,
    batches_fn: BatchesFn,
    config: TrainConfig | None = None,
    *,
    workdir: str | os.PathLike | None = None,
    eval_sets: Mapping[str, Callable[[], Iterable[dict]]] | None = None,
    eval_fn: Callable | None = None,
    init_carry: Callable[[], object] | None = None,
    eval_init_carry: Callable[[], object] | None = None,
    penalty_where: Filter = is_kernel,
    key=None,
    mesh: Mesh | None = None,
) -> TrainResult:
    """Trains ``model``, resuming from ``workdir``'s latest checkpoint if there is one.

    Each step runs ``loss_fn`` (plus the L1/L2 penalties of ``config``) under ``jax.jit``
    with the batch sharded over the mesh and the state replicated and donated. At the end
    of an epoch the model is evaluated on every set of ``eval_sets``; early stopping watches
    one of them. A checkpoint is written every ``config.checkpoint_every`` steps and when
    the call returns.

    Args:
      model: a freshly initialised NNX model (on resume its arrays are replaced by the
        checkpoint's); not changed.
      tx: the optax optimiser (see :func:`jdrop.train.make_optimizer`).
      loss_fn: ``(model, batch, key, carry) -> (loss, (metrics, new_carry))``.
      batches_fn: ``(epoch, start_step) -> iterable`` of this process's rows of the
        global batches of that epoch, from batch ``start_step`` on; deterministic.
      config: the settings (default ``TrainConfig()``).
      workdir: where ``metrics.jsonl`` and ``checkpoints/`` go (``None``: nothing is
        written and nothing resumed).
      eval_sets: name -> ``() -> iterable of batches`` (e.g. ``{"val": ...}``).
      eval_fn: ``(model, batch, carry) -> (metrics, new_carry)`` for evaluation; by
        default ``loss_fn`` with ``key=None``.
      init_carry: ``() -> carry``, the carry at the start of each training epoch (host
        values of the global arrays; leaves whose leading axis divides by the device
        count are sharded by rows).
      eval_init_carry: the same for each evaluation (default ``init_carry``).
      penalty_where: which parameters the L1/L2 penalties act on (kernels by default).
      key: the run's base key (default ``jax.random.key(config.seed)``).
      mesh: the device mesh (default: a ``"data"`` axis over every device).

    Returns:
      A :class:`TrainResult`.

    Raises:
      ValueError: for inconsistent arguments (e.g. early stopping on a missing eval set).

    Examples:
      >>> import jax.numpy as jnp, numpy as np, optax
      >>> from flax import nnx
      >>> from jdrop.train import TrainConfig, train
      >>> def loss_fn(model, batch, key, carry):  # key: dropout masks (unused here)
      ...     return jnp.mean((model(batch["inputs"]) - batch["targets"])**2), ({}, carry)
      >>> x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(16, 2)
      >>> data = {"inputs": x, "targets": x @ np.array([[1.0], [-1.0]], np.float32)}
      >>> result = train(nnx.Linear(2, 1, rngs=nnx.Rngs(0)), optax.sgd(0.1), loss_fn,
      ...                lambda epoch, start: [data][start:],
      ...                TrainConfig(num_epochs=3, progress=False))
      >>> result.step, [r["split"] for r in result.history]
      (3, ['train', 'train', 'train'])
    """
    config = TrainConfig() if config is None else config
    eval_sets = {} if eval_sets is None else eval_sets
    _check_args(loss_fn, batches_fn, config, eval_sets, init_carry, workdir)
    mesh = make_mesh() if mesh is None else mesh
    key = jax.random.key(config.seed) if key is None else key
    eval_init_carry = init_carry if eval_init_carry is None else eval_init_carry
    graphdef, state = create_train_state(model, tx, key, mesh)
    serialize_steps = jax.default_backend() == "cpu" and len(mesh.devices.flat) > 1
    train_step = make_train_step(
        graphdef, loss_fn, tx, mesh, l1=config.l1, l2=config.l2, penalty_where=penalty_where
    )
    eval_step = make_eval_step(graphdef, eval_fn or eval_fn_from_loss(loss_fn), mesh)
    is_main = jax.process_index() == 0
    rule = config.early_stopping
    keep_best = config.restore_best

    metrics_path = None if workdir is None else os.path.join(os.fspath(workdir), "metrics.jsonl")
    if workdir is not None and is_main:
        os.makedirs(workdir, exist_ok=True)
    writer = MetricsWriter(metrics_path, enabled=is_main)
    ckpt = None
    if workdir is not None:
        ckpt = Checkpointer(
            os.path.join(os.fspath(workdir), "checkpoints"), max_to_keep=config.max_to_keep
        )

    es_state = rule.init() if rule is not None else None
    epoch, start, best, restored_carry = 0, 0, None, None
    if ckpt is not None and ckpt.latest_step is not None:
        best_target = (
            {"params": state.params, "model_state": state.model_state} if keep_best else None
        )
        state, meta, restored_carry, best = ckpt.restore(
            state, carry_target=_fresh_carry(init_carry, mesh), best_target=best_target
        )
        epoch, start = int(meta["epoch"]), int(meta["step_in_epoch"])
        if rule is not None and meta.get("early_stopping") is not None:
            es_state = EarlyStoppingState.from_dict(meta["early_stopping"])
        writer.truncate_after(int(meta["step"]))
    step = int(state.step)
    last_saved = None if ckpt is None else ckpt.latest_step

    def save(position_epoch: int, position_step: int, carry) -> None:
        nonlocal last_saved
        if ckpt is None or last_saved == step:
            return
        meta = {
            "step": step,
            "epoch": position_epoch,
            "step_in_epoch": position_step,
            "early_stopping": None if es_state is None else es_state.to_dict(),
        }
        carry = carry if position_step > 0 else None
        ckpt.save(step, state, meta=meta, carry=carry, best=best)
        last_saved = step

    def reached_max() -> bool:
        return config.max_steps is not None and step >= config.max_steps

    bar = progress_bar(config.progress and is_main, initial=step)
    running = RunningMean()
    stopped_early = es_state is not None and es_state.stop
    interrupted, carry, k = False, None, start
    try:
        while epoch < config.num_epochs and not stopped_early and not reached_max():
            bar.set_description(f"epoch {epoch}")
            carry = restored_carry if start > 0 and restored_carry is not None else None
            carry = _fresh_carry(init_carry, mesh) if carry is None else carry
            restored_carry = None
            batches = iter(batches_fn(epoch, start))
            upcoming = next(batches, _END)
            if upcoming is _END:
                raise ValueError(f"batches_fn(epoch={epoch}, start_step={start}) yielded no batch")
            k = start
            while upcoming is not _END:
                state, metrics, carry = train_step(state, global_batch(upcoming, mesh), carry)
                if serialize_steps:
                    # XLA:CPU runs the collectives of several virtual devices on a small
                    # thread pool; with asynchronous dispatch, one device can enter the next
                    # step's collective while another still needs a thread for this one,
                    # and the rendezvous aborts after 40 s. One step at a time avoids it.
                    jax.block_until_ready(state)
                step, k = step + 1, k + 1
                running.add(metrics)
                upcoming = next(batches, _END)
                epoch_done = upcoming is _END
                bar.update(1)
                if step % config.log_every == 0 or epoch_done:
                    record = running.result()
                    running.reset()
                    writer.write({"step": step, "epoch": epoch, "split": "train", **record})
                    bar.set_postfix({name: f"{v:.4g}" for name, v in record.items()})
                if not epoch_done:
                    if config.checkpoint_every and step % config.checkpoint_every == 0:
                        save(epoch, k, carry)
                    if reached_max():
                        interrupted = True
                        break
            if interrupted:
                break
            done = epoch + 1
            if eval_sets and (done % config.eval_every == 0 or done == config.num_epochs):
                for name, make_batches in eval_sets.items():
                    results = _run_eval(
                        eval_step,
                        state.params,
                        state.model_state,
                        make_batches(),
                        eval_init_carry,
                        mesh,
                    )
                    writer.write({"step": step, "epoch": epoch, "split": name, **results})
                    if rule is not None and name == rule.split:
                        if rule.metric not in results:
                            raise ValueError(
                                f"early_stopping metric={rule.metric!r} is not among the "
                                f"{name!r} metrics {sorted(results)}"
                            )
                        es_state = rule.update(
                            es_state, results[rule.metric], step=step, epoch=epoch
                        )
                        if keep_best and es_state.best_step == step:
                            best = jax.tree.map(
                                jnp.copy,
                                {"params": state.params, "model_state": state.model_state},
                            )
                stopped_early = es_state is not None and es_state.stop
            epoch, start, carry = done, 0, None
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                save(epoch, 0, None)
        if interrupted:
            save(epoch, k, carry)
        else:
            save(epoch, start, None)
    finally:
        bar.close()
        if ckpt is not None:
            ckpt.close()

    final = merge_model(graphdef, state)
    if keep_best and best is not None:
        final = nnx.merge(graphdef, best["params"], best["model_state"])
    return TrainResult(
        model=final,
        state=state,
        history=writer.records,
        early_stopping=es_state,
        epoch=epoch,
        step=step,
        stopped_early=stopped_early,
    )
