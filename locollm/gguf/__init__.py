"""GGUF files as a format: header keys and tensor layout read without parsing the vocabulary
(``header``), the architecture, layer count and tensor names of a model (``names``), whether a
LoRA GGUF fits a base GGUF (``compat``) and a SentencePiece model rebuilt from a GGUF's
vocabulary (``spm``). Shared by export, training, the engine and the registry."""
