"""Data for jdrop's experiments: loaders that return numpy arrays, and batching.

Every loader returns a :class:`DatasetSplits` of :class:`ArrayDataset` splits (or, for
the UCI sets, a :class:`UCISplit`); :func:`batches` and :func:`lm_batches` turn them into
deterministic, resumable, per-process numpy batches. Parallel text for translation
(:func:`load_multi30k`, :func:`load_parallel_text`, :func:`load_tfds_translation`) comes
as ``{split: (sources, targets)}`` lists of strings, tokenised by
:class:`SubwordTokenizer` and batched by :func:`translation_batches`. Missing data raises
:class:`DataNotFoundError`, which lists every place searched and how to provide it.

Only numpy, the standard library and jdrop's validation module (which imports jax, as
``import jdrop`` does anyway) are imported here; ``tensorflow_datasets`` and ``mnist1d``
are imported inside the functions that use them.
"""

from jdrop.data._audio import AudioClips as AudioClips
from jdrop.data._audio import leave_one_speaker_out as leave_one_speaker_out
from jdrop.data._audio import load_tfds_audio as load_tfds_audio
from jdrop.data._audio import load_wav_folder as load_wav_folder
from jdrop.data._audio import official_split as official_split
from jdrop.data._audio import parse_clip_name as parse_clip_name
from jdrop.data._audio import read_wav as read_wav
from jdrop.data._batching import batches as batches
from jdrop.data._batching import epoch_order as epoch_order
from jdrop.data._batching import lm_batches as lm_batches
from jdrop.data._batching import num_batches as num_batches
from jdrop.data._batching import num_lm_batches as num_lm_batches
from jdrop.data._catalog import DATASET_NAMES as DATASET_NAMES
from jdrop.data._catalog import load_dataset as load_dataset
from jdrop.data._dataset import ArrayDataset as ArrayDataset
from jdrop.data._dataset import DatasetSplits as DatasetSplits
from jdrop.data._errors import DataFormatError as DataFormatError
from jdrop.data._errors import DataNotFoundError as DataNotFoundError
from jdrop.data._idx import load_fashion_mnist as load_fashion_mnist
from jdrop.data._idx import load_mnist as load_mnist
from jdrop.data._idx import parse_idx as parse_idx
from jdrop.data._idx import read_idx as read_idx
from jdrop.data._locate import shared_data_roots as shared_data_roots
from jdrop.data._mnist_1d import load_mnist1d as load_mnist1d
from jdrop.data._parallel import MULTI30K_SPLITS as MULTI30K_SPLITS
from jdrop.data._parallel import SubwordTokenizer as SubwordTokenizer
from jdrop.data._parallel import filter_pairs as filter_pairs
from jdrop.data._parallel import load_multi30k as load_multi30k
from jdrop.data._parallel import load_parallel_text as load_parallel_text
from jdrop.data._parallel import load_tfds_translation as load_tfds_translation
from jdrop.data._parallel import num_translation_batches as num_translation_batches
from jdrop.data._parallel import restore_order as restore_order
from jdrop.data._parallel import source_batches as source_batches
from jdrop.data._parallel import translation_batches as translation_batches
from jdrop.data._shifts import SHIFTS as SHIFTS
from jdrop.data._shifts import apply_shift as apply_shift
from jdrop.data._text import char_corpus as char_corpus
from jdrop.data._text import load_char_corpus as load_char_corpus
from jdrop.data._text import load_ptb as load_ptb
from jdrop.data._text import read_words as read_words
from jdrop.data._text import tfds_split_sizes as tfds_split_sizes
from jdrop.data._tfds_source import load_tfds as load_tfds
from jdrop.data._tfds_source import load_tfds_char_corpus as load_tfds_char_corpus
from jdrop.data._tfds_source import load_tfds_dataset as load_tfds_dataset
from jdrop.data._uci import Standardizer as Standardizer
from jdrop.data._uci import UCISplit as UCISplit
from jdrop.data._uci import load_uci as load_uci
from jdrop.data._uci import uci_dataset_names as uci_dataset_names
from jdrop.data._vocab import Vocabulary as Vocabulary

__all__ = [
    "ArrayDataset",
    "AudioClips",
    "DATASET_NAMES",
    "DataFormatError",
    "DataNotFoundError",
    "DatasetSplits",
    "MULTI30K_SPLITS",
    "SHIFTS",
    "Standardizer",
    "SubwordTokenizer",
    "UCISplit",
    "Vocabulary",
    "apply_shift",
    "batches",
    "char_corpus",
    "epoch_order",
    "filter_pairs",
    "leave_one_speaker_out",
    "lm_batches",
    "load_char_corpus",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist1d",
    "load_multi30k",
    "load_parallel_text",
    "load_ptb",
    "load_tfds",
    "load_tfds_audio",
    "load_tfds_char_corpus",
    "load_tfds_dataset",
    "load_tfds_translation",
    "load_uci",
    "load_wav_folder",
    "num_batches",
    "num_lm_batches",
    "num_translation_batches",
    "official_split",
    "parse_clip_name",
    "parse_idx",
    "read_idx",
    "read_wav",
    "read_words",
    "restore_order",
    "shared_data_roots",
    "source_batches",
    "tfds_split_sizes",
    "translation_batches",
    "uci_dataset_names",
]
