"""Flax linen drop-ins: :class:`Dropout` with ``flax.linen.Dropout``'s signature.

Switching a linen model to jdrop's masks is one import::

    from jdrop.linen import Dropout      # instead of: from flax.linen import Dropout

Imported lazily (``jdrop.linen``) so that ``import jdrop`` does not import ``flax.linen``.
"""

from jdrop.linen._dropout import Dropout as Dropout

__all__ = ["Dropout"]
