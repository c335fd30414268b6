"""Serving and asking: the engine (the only llama.cpp user), sessions over a base and its
adapters, the router, `loco query`, `loco chat` and the OpenAI-compatible server."""
