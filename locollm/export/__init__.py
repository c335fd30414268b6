"""Export for llama.cpp with no clone and no compiler: the LoRA GGUF (``lora``, written by
``lora_writer``), merged GGUF and safetensors (``merged``, tensors folded by
``merge_tensors``), and numerical verification of each against its source (``verify``)."""
