"""Training data, the guide's Phase 2: the JSONL schema and reading (``jsonl``), the quality
checklist (``check``), near-duplicate search (``neardup``), a contamination-free train /
benchmark split (``split``), synthetic examples from an OpenAI-compatible endpoint (``synth``)
and converters from public datasets (``convert``)."""
