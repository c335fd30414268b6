"""GGUF files as a format: header keys read without parsing the vocabulary (``header``) and
the architecture, layer count and tensor names of a model (``names``). Shared by export,
training, the engine and the registry."""
