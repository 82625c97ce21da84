"""Packing by column generation (the default solver, `colgen`): master.py (HiGHS master,
one method per row family), pricing.py (singletons and compiled greedy pricing),
dive.py (integer plans), solver.py (the phases)."""
