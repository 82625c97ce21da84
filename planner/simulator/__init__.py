"""Discrete-event simulation of a plan: does it hold its SLOs under bursty or real traffic?

`simulate_plan(scenario, plan, SimulationSettings(...))` -> `SimulationResult`. See
`engine` for the loop, `kernel` for the compiled per-server round robin (and the queue's
saturation behaviour), `arrivals` for Gamma and trace arrivals, `fleet` for how a plan
becomes servers and replicas. The batching and routing decisions are `planner.policies`.
"""

from planner.simulator.arrivals import GammaArrivals, Trace, TraceArrivals, load_trace
from planner.simulator.engine import SimulationSettings, run_simulation, simulate_plan
from planner.simulator.fleet import Fleet, build_fleet
from planner.simulator.results import GpuResult, ModelResult, SimulationResult

__all__ = [
    "Fleet",
    "GammaArrivals",
    "GpuResult",
    "ModelResult",
    "SimulationResult",
    "SimulationSettings",
    "Trace",
    "TraceArrivals",
    "build_fleet",
    "load_trace",
    "run_simulation",
    "simulate_plan",
]
