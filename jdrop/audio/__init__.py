"""Audio features in JAX: STFT, mel filter bank and log-mel spectrograms, batched and jitted.

Matches ``librosa`` (the reference implementation) to float32 tolerance; outputs are
time-major ``(..., frames, bands)``. Spectrogram masking (SpecAugment) is the key-first op
:func:`jdrop.spec_augment`; :func:`vtlp` (vocal tract length perturbation) warps the mel
axis of each example by its own random factor, key-first too.
"""

from jdrop.audio._features import frame as frame
from jdrop.audio._features import hann_window as hann_window
from jdrop.audio._features import hz_to_mel as hz_to_mel
from jdrop.audio._features import log_mel_spectrogram as log_mel_spectrogram
from jdrop.audio._features import mel_band_centers as mel_band_centers
from jdrop.audio._features import mel_filterbank as mel_filterbank
from jdrop.audio._features import mel_spectrogram as mel_spectrogram
from jdrop.audio._features import mel_to_hz as mel_to_hz
from jdrop.audio._features import num_frames as num_frames
from jdrop.audio._features import power_to_db as power_to_db
from jdrop.audio._features import stft as stft
from jdrop.audio._vtlp import vtlp as vtlp
from jdrop.audio._vtlp import vtlp_warp as vtlp_warp

__all__ = [
    "frame",
    "hann_window",
    "hz_to_mel",
    "log_mel_spectrogram",
    "mel_band_centers",
    "mel_filterbank",
    "mel_spectrogram",
    "mel_to_hz",
    "num_frames",
    "power_to_db",
    "stft",
    "vtlp",
    "vtlp_warp",
]
