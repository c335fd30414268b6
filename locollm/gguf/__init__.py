"""GGUF files written and read with the ``gguf`` package: no llama.cpp clone, no compiler."""
