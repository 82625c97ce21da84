"""Formulations and solver backends behind one interface (`solvers.registry`)."""
