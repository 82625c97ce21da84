"""GPU placement planner: scenario in, proven-optimal placement plan out.

Data flow (see docs/ and ../shared/DESIGN.md):
load_scenario -> check_scenario -> build_candidates -> build_problem -> solve -> extract_plan
-> verify_plan -> write_plan.
"""

__version__ = "0.1.0"
