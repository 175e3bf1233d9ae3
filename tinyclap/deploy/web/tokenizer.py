"""The text student's SentencePiece model as JSON, for the page's tokenizer (``tokenizer.js``).

The ``.model`` file is a protobuf; the page reads instead ``tokenizer.json``:
every piece with its score and type, the model type (unigram or BPE), the
normalizer's settings and its precompiled character map (base64, the same
bytes sentencepiece's C++ normalizer reads), the unknown id and the
``max_length`` of the text graph's contract
(:class:`tinyclap.runtime.text.SentencePieceIds`). The tests check that the
page's ids equal sentencepiece's.

Example
-------
>>> spec = sentencepiece_json("exported/demo/text_tokenizer.model", 32)  # doctest: +SKIP
>>> spec["model_type"], len(spec["pieces"])  # doctest: +SKIP
('unigram', 2000)
"""

import base64
from pathlib import Path

FORMAT = "tinyclap-sentencepiece"
MODEL_TYPES = {1: "unigram", 2: "bpe"}  # sentencepiece TrainerSpec.ModelType


class UnsupportedTokenizerError(ValueError):
    """A SentencePiece model the page's tokenizer does not implement (the file is named)."""


def sentencepiece_json(model_path, max_length):
    """The JSON-ready description of a SentencePiece model (see the module docstring).

    Parameters
    ----------
    model_path : str or Path
        ``text_tokenizer.model`` of an exported folder.
    max_length : int
        Ids kept per text (``export.json["text_student"]["tokenizer"]["max_length"]``).

    Raises
    ------
    UnsupportedTokenizerError
        Not unigram or BPE, or with byte fallback.
    """
    from sentencepiece import sentencepiece_model_pb2

    path = Path(model_path)
    proto = sentencepiece_model_pb2.ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as err:  # protobuf's DecodeError and friends
        raise UnsupportedTokenizerError(f"{path}: not a SentencePiece model ({err})") from err
    model_type = MODEL_TYPES.get(proto.trainer_spec.model_type)
    if model_type is None:
        raise UnsupportedTokenizerError(
            f"{path}: SentencePiece model type {proto.trainer_spec.model_type} is not "
            "supported by the web page (unigram or BPE only)"
        )
    if proto.trainer_spec.byte_fallback:
        raise UnsupportedTokenizerError(
            f"{path}: byte fallback is not supported by the web page's tokenizer"
        )
    spec = proto.normalizer_spec
    return {
        "format": FORMAT,
        "model_type": model_type,
        "unk_id": int(proto.trainer_spec.unk_id),
        "max_length": int(max_length),
        "normalizer": {
            "name": spec.name,
            "add_dummy_prefix": bool(spec.add_dummy_prefix),
            "remove_extra_whitespaces": bool(spec.remove_extra_whitespaces),
            "escape_whitespaces": bool(spec.escape_whitespaces),
            "precompiled_charsmap": base64.b64encode(spec.precompiled_charsmap).decode("ascii"),
        },
        "pieces": [[p.piece, float(p.score), int(p.type)] for p in proto.pieces],
    }
