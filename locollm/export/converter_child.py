"""Child process that runs one of llama.cpp's own converters (model or LoRA) unchanged.

Run by :mod:`locollm.export.converter` as ``python converter_child.py DIR MODE ARGS...``: DIR is
the fetched converter folder, MODE ``model`` (``convert_hf_to_gguf.py``) or ``lora``
(``convert_lora_to_gguf.py``), ARGS that script's own arguments. This file must not import
locollm: the child puts llama.cpp's ``gguf-py`` first on its path, and that copy of the ``gguf``
package (the one the converter was written against) must never meet the ``gguf`` package
locollm itself uses.

Two additions to the converter, each used only where it would otherwise fail:

* ``LOCOLLM_PRE_TOKENIZER`` names the pre-tokenizer to record for a BPE tokenizer llama.cpp
  does not recognise (it identifies pre-tokenizers by the hash of a test string's tokens, so a
  tokenizer you trained yourself is never recognised).
* A SentencePiece vocabulary keeps its user-defined pieces (Gemma's runs of spaces and
  newlines) when ``tokenizer_config.json`` has no ``added_tokens_decoder``. The converter
  reads them from that list only, and transformers 5 no longer writes it (the added tokens
  moved into ``tokenizer.json``); without them llama.cpp splits ``"  "`` into two tokens the
  model was never trained on.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from pathlib import Path

SCRIPTS = {"model": "convert_hf_to_gguf.py", "lora": "convert_lora_to_gguf.py"}
# The parent looks for this prefix on the last lines of the log to tell known failures apart.
TAG = "LOCOLLM-CONVERT-ERROR "
UNKNOWN_PRE_TOKENIZER = 3


def _fall_back_pre_tokenizer(name: str) -> None:
    from conversion import base

    original = base.TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer) -> str:
        try:
            return original(self, tokenizer)
        except NotImplementedError:
            print(f"locollm: tokenizer not recognised by llama.cpp, recording pre-tokenizer "
                  f"{name!r} as asked", file=sys.stderr)
            return name

    base.TextModel.get_vocab_base_pre = get_vocab_base_pre


def _keep_user_defined_pieces() -> None:
    from conversion import base

    original = base.TextModel._create_vocab_sentencepiece

    def create_vocab_sentencepiece(self):
        tokens, scores, toktypes = original(self)
        config = self.dir_model / "tokenizer_config.json"
        if config.is_file() and "added_tokens_decoder" in json.loads(config.read_text("utf-8")):
            return tokens, scores, toktypes
        from sentencepiece import sentencepiece_model_pb2 as spm

        proto = spm.ModelProto()
        proto.ParseFromString((self.dir_model / "tokenizer.model").read_bytes())
        for i, piece in enumerate(proto.pieces[: len(tokens)]):
            if piece.type == spm.ModelProto.SentencePiece.USER_DEFINED:
                # as the converter writes listed user-defined tokens: spaces pre-normalized
                tokens[i] = piece.piece.replace("\u2581", " ").encode("utf-8")
                toktypes[i] = base.SentencePieceTokenTypes.USER_DEFINED
        return tokens, scores, toktypes

    base.TextModel._create_vocab_sentencepiece = create_vocab_sentencepiece


def main(argv: list[str]) -> int:
    folder, mode, *args = argv
    root = Path(folder)
    sys.path[:0] = [str(root / "gguf-py"), str(root)]
    pre = os.environ.get("LOCOLLM_PRE_TOKENIZER")
    if pre:
        _fall_back_pre_tokenizer(pre)
    _keep_user_defined_pieces()
    script = root / SCRIPTS[mode]
    sys.argv = [str(script), *args]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except NotImplementedError as exc:
        traceback.print_exc()
        if "pre-tokenizer" in str(exc):
            print(f"{TAG}pre-tokenizer {exc}", file=sys.stderr)
            return UNKNOWN_PRE_TOKENIZER
        print(f"{TAG}unsupported {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the log keeps the traceback; the parent shows its tail
        traceback.print_exc()
        print(f"{TAG}failed {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
