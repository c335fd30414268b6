"""A SentencePiece ``tokenizer.model`` rebuilt from a GGUF's ``llama`` (SentencePiece) vocabulary.

transformers' GGUF loader gives the dequantized training folder a ``tokenizer.json`` only. That
is enough for transformers, but not for llama.cpp's converter: without ``tokenizer.model`` it
treats a SentencePiece vocabulary as GPT-2 BPE and writes a GGUF that tokenizes differently
(Gemma 3 270M's vocabulary was taken for an unrelated BPE model). The GGUF holds everything a
SentencePiece model is (pieces, scores, piece types, the special ids), so the folder gets the
``tokenizer.model`` its GGUF was made from, built with SentencePiece's own protobuf schema.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import AdapterError
from ..paths import atomic_write

# SentencePiece's special ids and the GGUF keys that hold them
_SPECIALS = {"unk": "tokenizer.ggml.unknown_token_id", "bos": "tokenizer.ggml.bos_token_id",
             "eos": "tokenizer.ggml.eos_token_id", "pad": "tokenizer.ggml.padding_token_id"}


def sentencepiece_model(gguf_path: str | Path) -> bytes | None:
    """Serialized SentencePiece model of a GGUF's vocabulary; None if it is not SentencePiece."""
    import gguf
    from sentencepiece import sentencepiece_model_pb2 as spm

    reader = gguf.GGUFReader(str(gguf_path))

    def value(key: str, default=None):
        field = reader.fields.get(key)
        return default if field is None else field.contents()

    if value("tokenizer.ggml.model") != "llama":
        return None
    tokens, scores, types = (value(f"tokenizer.ggml.{k}") for k in ("tokens", "scores",
                                                                     "token_type"))
    if not tokens or len(tokens) != len(scores or ()) or len(tokens) != len(types or ()):
        raise AdapterError("GGUF vocabulary is incomplete (tokens, scores and types differ)",
                           file=gguf_path)
    ids = {name: value(key) for name, key in _SPECIALS.items()}
    model = spm.ModelProto()
    for i, (piece, score, kind) in enumerate(zip(tokens, scores, types, strict=True)):
        entry = model.pieces.add()
        entry.piece, entry.score = piece, float(score)
        # SentencePiece needs exactly one UNKNOWN piece; GGUFs often mark it CONTROL.
        entry.type = spm.ModelProto.SentencePiece.UNKNOWN if i == ids["unk"] else int(kind)
    trainer = model.trainer_spec
    trainer.model_type = spm.TrainerSpec.BPE
    trainer.vocab_size = len(tokens)
    trainer.byte_fallback = any(int(t) == spm.ModelProto.SentencePiece.BYTE for t in types)
    for key in _SPECIALS:
        token_id = ids[key]
        setattr(trainer, f"{key}_id", -1 if token_id is None else int(token_id))
        if token_id is not None:
            setattr(trainer, f"{key}_piece", tokens[int(token_id)])
    norm = model.normalizer_spec
    norm.name = "identity"
    norm.add_dummy_prefix = bool(value("tokenizer.ggml.add_space_prefix", True))
    norm.remove_extra_whitespaces = False
    norm.escape_whitespaces = True
    return model.SerializeToString()


def write_sentencepiece_model(gguf_path: str | Path, out: str | Path) -> Path | None:
    """Write ``tokenizer.model`` for a GGUF's SentencePiece vocabulary (atomically); None when
    the GGUF's tokenizer is of another kind."""
    data = sentencepiece_model(gguf_path)
    return None if data is None else atomic_write(out, data)
