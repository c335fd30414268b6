"""Runtime: the llama.cpp engine (base loaded once, adapters swapped), router and HTTP server."""
