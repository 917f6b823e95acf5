"""Evaluators answer "train this architecture to this fidelity": tabular or live."""
