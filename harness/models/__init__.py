"""Networks for live training (:mod:`.nb201`) and their size counts (:mod:`.counts`)."""
