"""Export for llama.cpp with no clone and no compiler, for a GGUF base or a Hugging Face one:
the LoRA GGUF (``lora``, from ``peft_lora``, written by ``lora_writer`` or llama.cpp's own
converter), merged GGUF and safetensors (``merged``, tensors folded by ``merge_tensors``),
Hugging Face model -> GGUF (``convert``, running llama.cpp's converter through ``converter``),
numerical verification against transformers (``verify``), what runs an export elsewhere
(``runners``: Ollama Modelfile, llama-server) and the export command as one call
(``pipeline``)."""
