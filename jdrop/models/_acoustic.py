"""Acoustic models over log-mel spectrograms ``(N, T, F)``: a CNN and a (bi)directional RNN.

:class:`AcousticCNN` treats the log-mel spectrogram as a one-channel image::

    [VTLP] -> [SpecAugment] -> (conv3x3 -> ReLU -> maxpool2 -> [conv dropout]) x L
                  -> flatten -> dense -> ReLU -> [dropout] -> dense (classes)

Conv dropout is ``"spatial"`` (whole feature maps, Tompson et al. 2015) or ``"standard"``
(single activations).

:class:`AcousticRNN` is a stack of (bi)directional GRU or LSTM layers (the fused cells of
:mod:`jdrop.nn` and its ``lax.scan``), with the variational dropout placements of Gal &
Ghahramani (2016): one mask per sequence on the inputs of every layer (``input_dropout``),
on the recurrent state before the recurrent matmul (``recurrent_dropout``) and on the
outputs (``output_dropout``). ``readout`` picks the mean over time (``"mean"``), the final
states (``"last"``) or per-frame logits (``"sequence"``, for CTC).

Both follow jdrop's call convention: ``model(x, key=key)`` trains (dropout and
SpecAugment on), ``model(x, deterministic=True)`` or ``model.eval(); model(x)`` infers.

References:
  Srivastava et al. "Dropout: A Simple Way to Prevent Neural Networks from Overfitting".
  JMLR 2014 (Section 6.1.3, TIMIT).
  Tompson et al. "Efficient Object Localization Using Convolutional Networks". CVPR 2015.
  Gal & Ghahramani. "A Theoretically Grounded Application of Dropout in Recurrent Neural
  Networks". NeurIPS 2016.
  Park et al. "SpecAugment: A Simple Data Augmentation Method for Automatic Speech
  Recognition". Interspeech 2019.
  Jaitly & Hinton. "Vocal Tract Length Perturbation (VTLP) improves speech recognition".
  ICML WDLASL 2013.
  Graves et al. "Connectionist Temporal Classification". ICML 2006.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

import jdrop
from jdrop._validation import check_choice, check_float_array, check_int, check_rate
from jdrop.audio import vtlp as vtlp_warp_features
from jdrop.nn._cells import make_cell
from jdrop.nn._mode import StochasticModule, layer_keys
from jdrop.nn._scan import scan_cell

__all__ = ["AcousticCNN", "AcousticRNN"]

CONV_DROPOUT_KINDS = ("spatial", "standard")
READOUTS = ("mean", "last", "sequence")
CELLS = ("gru", "lstm")


def _spec_augment_kwargs(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"spec_augment must be a dict of jdrop.spec_augment arguments or None, "
                        f"got spec_augment={value!r}")
    allowed = {"num_time_masks", "max_time_width", "num_freq_masks", "max_freq_width",
               "mask_value"}
    unknown = set(value) - allowed
    if unknown:
        raise ValueError(f"spec_augment has unknown arguments {sorted(unknown)}; "
                         f"allowed: {sorted(allowed)}")
    return dict(value)


VTLP_ARGUMENTS = ("sample_rate", "max_warp", "fmin", "fmax", "htk", "boundary")


def _vtlp_kwargs(value, n_mels: int) -> dict | None:
    """Checks ``jdrop.audio.vtlp`` arguments once, at construction."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"vtlp must be a dict of jdrop.audio.vtlp arguments or None, "
                        f"got vtlp={value!r}")
    unknown = set(value) - set(VTLP_ARGUMENTS)
    if unknown or "sample_rate" not in value:
        raise ValueError(f"vtlp needs 'sample_rate' and takes {list(VTLP_ARGUMENTS)}, "
                         f"got vtlp={dict(value)!r}")
    kwargs = dict(value)
    # an inference call checks every argument (frequencies, warp, boundary) and changes nothing
    vtlp_warp_features(None, jnp.zeros((1, n_mels)), deterministic=True, **kwargs)
    return kwargs


def _augment(x, key, det, vtlp, spec_augment):
    """VTLP then SpecAugment, both from one key (SpecAugment alone uses it whole)."""
    if vtlp is not None and not det:
        vtlp_key, key = jax.random.split(key)
        x = vtlp_warp_features(vtlp_key, x, **vtlp)
    if spec_augment is not None:
        x = jdrop.spec_augment(key, x, deterministic=det, **spec_augment)
    return x


def _check_input(x, n_mels: int, name: str, n_frames: int | None = None) -> jax.Array:
    x = check_float_array(x)
    frames_ok = n_frames is None or (x.ndim == 3 and x.shape[1] == n_frames)
    if x.ndim != 3 or x.shape[2] != n_mels or not frames_ok:
        want = f"(N, {n_frames if n_frames is not None else 'T'}, {n_mels})"
        raise ValueError(f"{name} expects log-mel spectrograms {want}, got x.shape={x.shape}")
    return x


class AcousticCNN(StochasticModule):
    """A small CNN over log-mel spectrograms ``(N, T, F)`` for isolated-word classification.

    Args:
      n_frames: frames ``T`` per input.
      n_mels: mel bands ``F``.
      num_classes: output classes.
      rngs: NNX random streams for initialisation.
      channels: output channels of each conv block (3x3 conv, ReLU, 2x2 max pool).
      hidden: width of the dense layer.
      dropout: dropout rate on the dense layer's output.
      conv_dropout: dropout rate after every conv block.
      conv_dropout_kind: ``"spatial"`` (whole feature maps) or ``"standard"``.
      spec_augment: ``jdrop.spec_augment`` arguments applied to the input while training,
        or ``None``.
      vtlp: ``jdrop.audio.vtlp`` arguments (``sample_rate`` required) applied to the input
        while training, before SpecAugment, or ``None``.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.

    Raises:
      ValueError: bad sizes, rates or kinds.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> model = AcousticCNN(48, 32, rngs=nnx.Rngs(0), dropout=0.5, conv_dropout=0.1,
      ...                     spec_augment=dict(num_time_masks=1, max_time_width=5))
      >>> x = jnp.zeros((2, 48, 32))
      >>> model(x, key=jax.random.key(0)).shape
      (2, 10)
      >>> model(x, deterministic=True).shape
      (2, 10)
    """

    def __init__(
        self,
        n_frames: int,
        n_mels: int,
        num_classes: int = 10,
        *,
        rngs: nnx.Rngs,
        channels: Sequence[int] = (16, 32),
        hidden: int = 64,
        dropout: float = 0.0,
        conv_dropout: float = 0.0,
        conv_dropout_kind: str = "spatial",
        spec_augment: Mapping | None = None,
        vtlp: Mapping | None = None,
        deterministic: bool = False,
    ):
        self.n_frames = check_int(n_frames, "n_frames", minimum=1)
        self.n_mels = check_int(n_mels, "n_mels", minimum=1)
        self.dropout = check_rate(dropout, "dropout")
        self.conv_dropout = check_rate(conv_dropout, "conv_dropout")
        self.conv_dropout_kind = check_choice(conv_dropout_kind, "conv_dropout_kind",
                                         CONV_DROPOUT_KINDS)
        self.spec_augment = _spec_augment_kwargs(spec_augment)
        self.vtlp = _vtlp_kwargs(vtlp, self.n_mels)
        self.deterministic = deterministic
        convs, in_ch, t, f = [], 1, n_frames, n_mels
        for i, ch in enumerate(channels):
            check_int(ch, f"channels[{i}]", minimum=1)
            convs.append(nnx.Conv(in_ch, ch, (3, 3), padding="SAME", rngs=rngs))
            in_ch, t, f = ch, t // 2, f // 2
            if t == 0 or f == 0:
                raise ValueError(f"{len(channels)} pooling blocks need n_frames and n_mels >= "
                                 f"{2 ** len(channels)}, got {n_frames} x {n_mels}")
        self.convs = nnx.List(convs)
        self.dense = nnx.Linear(t * f * in_ch, check_int(hidden, "hidden", minimum=1), rngs=rngs)
        self.out = nnx.Linear(hidden, check_int(num_classes, "num_classes", minimum=1), rngs=rngs)

    def __call__(self, x, *, key=None, deterministic=None) -> jax.Array:
        """Class logits ``(N, num_classes)`` for log-mel spectrograms ``x`` ``(N, T, F)``.

        Args:
          x: the spectrograms (normalised features).
          key: PRNG key for dropout and SpecAugment (required while training).
          deterministic: inference (default: ``self.deterministic``).

        Raises:
          ValueError: wrong input shape; training without ``key``.
        """
        x = _check_input(x, self.n_mels, "AcousticCNN", self.n_frames)
        keys, det = layer_keys(self, key, deterministic, len(self.convs) + 2)
        x = _augment(x, keys[-1], det, self.vtlp, self.spec_augment)
        h = x[..., None]
        for conv, k in zip(self.convs, keys, strict=False):
            h = nnx.max_pool(jax.nn.relu(conv(h)), (2, 2), strides=(2, 2))
            if self.conv_dropout > 0:
                if self.conv_dropout_kind == "spatial":
                    h = jdrop.spatial_dropout(k, h, self.conv_dropout, deterministic=det)
                else:
                    h = jdrop.dropout(k, h, self.conv_dropout, deterministic=det)
        h = jax.nn.relu(self.dense(h.reshape(h.shape[0], -1)))
        if self.dropout > 0:
            h = jdrop.dropout(keys[-2], h, self.dropout, deterministic=det)
        return self.out(h)


class AcousticRNN(StochasticModule):
    """A stack of (bi)directional GRU/LSTM layers over log-mel frames, variational dropout.

    Args:
      n_mels: mel bands ``F`` (features per frame).
      num_classes: output classes (per frame with ``readout="sequence"``, e.g. 11 for ten
        digits plus the CTC blank).
      rngs: NNX random streams for initialisation.
      cell: ``"gru"`` or ``"lstm"``.
      hidden_size: units per direction.
      num_layers: stacked layers.
      bidirectional: add a backward RNN in every layer (outputs concatenated).
      readout: ``"mean"`` over time, ``"last"`` (final states of both directions) or
        ``"sequence"`` (logits for every frame, ``(N, T // subsample, num_classes)``).
      subsample: stack this many consecutive frames into one time step (a shorter scan).
      input_dropout: variational dropout on every layer's inputs (one mask per sequence).
      recurrent_dropout: variational dropout on ``h_{t-1}`` before the recurrent matmul.
      output_dropout: variational dropout on the last layer's outputs.
      spec_augment: ``jdrop.spec_augment`` arguments applied to the input while training,
        or ``None``.
      vtlp: ``jdrop.audio.vtlp`` arguments (``sample_rate`` required) applied to the input
        while training, before SpecAugment, or ``None``.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.

    Raises:
      ValueError: bad sizes, rates or choices.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> model = AcousticRNN(32, rngs=nnx.Rngs(0), recurrent_dropout=0.25)
      >>> model(jnp.zeros((2, 40, 32)), key=jax.random.key(0)).shape
      (2, 10)
      >>> ctc = AcousticRNN(32, 11, rngs=nnx.Rngs(0), readout="sequence", subsample=2)
      >>> ctc(jnp.zeros((2, 40, 32)), deterministic=True).shape
      (2, 20, 11)
    """

    def __init__(
        self,
        n_mels: int,
        num_classes: int = 10,
        *,
        rngs: nnx.Rngs,
        cell: str = "gru",
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = True,
        readout: str = "mean",
        subsample: int = 1,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        output_dropout: float = 0.0,
        spec_augment: Mapping | None = None,
        vtlp: Mapping | None = None,
        deterministic: bool = False,
    ):
        self.n_mels = check_int(n_mels, "n_mels", minimum=1)
        self.cell = check_choice(cell, "cell", CELLS)
        self.readout = check_choice(readout, "readout", READOUTS)
        self.subsample = check_int(subsample, "subsample", minimum=1)
        self.input_dropout = check_rate(input_dropout, "input_dropout")
        self.recurrent_dropout = check_rate(recurrent_dropout, "recurrent_dropout")
        self.output_dropout = check_rate(output_dropout, "output_dropout")
        self.spec_augment = _spec_augment_kwargs(spec_augment)
        self.vtlp = _vtlp_kwargs(vtlp, self.n_mels)
        self.deterministic = deterministic
        self.hidden_size = check_int(hidden_size, "hidden_size", minimum=1)
        self.num_layers = check_int(num_layers, "num_layers", minimum=1)
        directions = 2 if bidirectional else 1
        self.directions = directions
        layers = []
        in_features = n_mels * subsample
        for _ in range(num_layers):
            layers.append(nnx.List(
                [make_cell(cell, in_features, hidden_size, rngs=rngs) for _ in range(directions)]
            ))
            in_features = directions * hidden_size
        self.layers = nnx.List(layers)
        num_classes = check_int(num_classes, "num_classes", minimum=1)
        self.out = nnx.Linear(in_features, num_classes, rngs=rngs)

    def __call__(self, x, *, key=None, deterministic=None) -> jax.Array:
        """Logits for log-mel spectrograms ``x`` ``(N, T, F)``.

        Returns:
          ``(N, num_classes)``, or ``(N, T // subsample, num_classes)`` for
          ``readout="sequence"``.

        Raises:
          ValueError: wrong input shape; training without ``key``.
        """
        x = _check_input(x, self.n_mels, "AcousticRNN")
        n_keys = 2 + self.num_layers * (1 + self.directions)
        keys, det = layer_keys(self, key, deterministic, n_keys)
        keys = list(keys)
        x = _augment(x, keys.pop(), det, self.vtlp, self.spec_augment)
        batch, frames = x.shape[0], x.shape[1] // self.subsample
        h = x[:, : frames * self.subsample].reshape(batch, frames, -1)
        for layer in self.layers:
            if self.input_dropout > 0:
                h = jdrop.locked_dropout(keys.pop(), h, self.input_dropout, deterministic=det)
            else:
                keys.pop()
            ht = jnp.swapaxes(h, 0, 1)  # time-major (T, N, F)
            outputs, finals = [], []
            for direction, cell in enumerate(layer):
                k = keys.pop()
                keep = None
                if not det and self.recurrent_dropout > 0:
                    keep = jdrop.keep_mask(k, (batch, self.hidden_size), self.recurrent_dropout)
                state, hs = scan_cell(
                    cell.make_step(), cell.init_state(batch, h.dtype), cell.project_inputs(ht),
                    recurrent_keep=keep, recurrent_rate=self.recurrent_dropout,
                    reverse=direction == 1,
                )
                outputs.append(hs)
                finals.append(state[0])
            h = jnp.swapaxes(jnp.concatenate(outputs, axis=-1), 0, 1)  # (N, T, D*H)
        if self.output_dropout > 0:
            h = jdrop.locked_dropout(keys.pop(), h, self.output_dropout, deterministic=det)
        if self.readout == "sequence":
            return self.out(h)
        if self.readout == "mean":
            return self.out(h.mean(axis=1))
        return self.out(jnp.concatenate(finals, axis=-1))
