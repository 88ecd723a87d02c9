"""A token vocabulary (characters or words): token <-> id, and fast encoding.

Its own module so that :mod:`jdrop.data._dataset` (which names it in
:class:`~jdrop.data.DatasetSplits`) and :mod:`jdrop.data._text` (which builds it) both
import it, and not each other.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["Vocabulary"]


@dataclasses.dataclass(frozen=True, eq=False)
class Vocabulary:
    """A fixed list of tokens (characters or words); a token's id is its position.

    Attributes:
      tokens: the tokens, unique; ``tokens[i]`` has id ``i``.
      separator: ``""`` for a character vocabulary (a string is encoded character by
        character, and ids decode to the characters joined), ``" "`` for words (a
        string is split on whitespace; ids decode to the words joined by spaces).
      unk: a token of ``tokens`` that stands for any unknown token, or ``None`` to make
        unknown tokens an error.

    Examples:
      >>> vocab = Vocabulary.characters("hello world")
      >>> vocab.tokens
      (' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w')
      >>> ids = vocab.encode("hold")
      >>> ids
      array([3, 5, 4, 1], dtype=int32)
      >>> vocab.decode(ids)
      'hold'
      >>> words = Vocabulary.words(["a", "b", "a", "<unk>"], unk="<unk>")
      >>> words.tokens, words.encode("a c").tolist(), words.decode([1, 0])
      (('a', '<unk>', 'b'), [0, 1], '<unk> a')
    """

    tokens: tuple[str, ...]
    separator: str = ""
    unk: str | None = None

    def __post_init__(self):
        tokens = tuple(self.tokens)
        if not tokens or not all(isinstance(t, str) for t in tokens):
            raise ValueError(f"tokens must be a non-empty sequence of strings, got {self.tokens!r}")
        index = {t: i for i, t in enumerate(tokens)}
        if len(index) != len(tokens):
            dup = next(t for t, c in collections.Counter(tokens).items() if c > 1)
            raise ValueError(f"tokens must be unique, got {dup!r} more than once")
        if self.separator not in ("", " "):
            raise ValueError(f"separator must be '' or ' ', got separator={self.separator!r}")
        if self.unk is not None and self.unk not in index:
            raise ValueError(f"unk must be one of the tokens, got unk={self.unk!r}")
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "_index", index)
        if self.separator == "" and all(len(t) == 1 for t in tokens):
            codes = np.array([ord(t) for t in tokens], dtype=np.uint32)
            order = np.argsort(codes)
            object.__setattr__(self, "_sorted_codes", codes[order])
            object.__setattr__(self, "_code_ids", order.astype(np.int32))
        else:
            object.__setattr__(self, "_sorted_codes", None)

    @classmethod
    def characters(cls, text: str) -> Vocabulary:
        """The sorted unique characters of ``text``."""
        codes = np.unique(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32))
        return cls(tuple(chr(c) for c in codes.tolist()), separator="")

    @classmethod
    def words(cls, words: Iterable[str], unk: str | None = None) -> Vocabulary:
        """The distinct ``words``, most frequent first (ties alphabetical).

        ``unk`` is added (last) if it does not occur in ``words``.
        """
        counts = collections.Counter(words)
        tokens = sorted(counts, key=lambda w: (-counts[w], w))
        if unk is not None and unk not in counts:
            tokens.append(unk)
        return cls(tuple(tokens), separator=" ", unk=unk)

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        kind = "characters" if self.separator == "" else "words"
        return f"Vocabulary({len(self)} {kind}, unk={self.unk!r})"

    def index(self, token: str) -> int:
        """The id of ``token`` (the ``unk`` id for unknown tokens when ``unk`` is set)."""
        found = self._index.get(token)
        if found is None:
            if self.unk is None:
                raise ValueError(f"token {token!r} is not in the vocabulary of {len(self)} tokens")
            return self._index[self.unk]
        return found

    def encode(self, text: str | Sequence[str]) -> np.ndarray:
        """Token ids (int32) of a string, or of a sequence of tokens.

        Raises:
          ValueError: for a token not in the vocabulary when there is no ``unk``.
        """
        if isinstance(text, str):
            if self._sorted_codes is not None:
                return self._encode_chars(text)
            text = list(text) if self.separator == "" else text.split()
        return np.fromiter((self.index(t) for t in text), dtype=np.int32, count=len(text))

    def _encode_chars(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        sorted_codes = self._sorted_codes
        pos = np.minimum(np.searchsorted(sorted_codes, codes), len(sorted_codes) - 1)
        ids = self._code_ids[pos]
        unknown = sorted_codes[pos] != codes
        if unknown.any():
            if self.unk is None:
                at = int(np.argmax(unknown))
                raise ValueError(
                    f"character {text[at]!r} (position {at}) is not in the vocabulary of "
                    f"{len(self)} characters"
                )
            ids[unknown] = self._index[self.unk]
        return ids

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """The text of a sequence of ids (tokens joined by :attr:`separator`)."""
        return self.separator.join(self.tokens[i] for i in np.asarray(ids).ravel().tolist())
