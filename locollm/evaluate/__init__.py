"""Evaluation, the guide's Phase 4: the benchmark runner (``runner``), answer scorers
(``scorers``), result files (``results``) and the guide's verdict (``verdict``)."""
