"""Typed results of a simulation, and their JSON form (CONTRACT.md, "Measured results")."""

from __future__ import annotations

from dataclasses import dataclass


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(float(x), digits)


@dataclass(frozen=True)
class ModelResult:
    """One model's measured service. Counts are requests; rates are per second of the run.

    offered: arrivals during the run; rejected: turned away by the router (a plan that
    serves less than the demand); dropped: waited longer than max_queue_ms; finished:
    served, including after the end of the run while the queues drain; completed: served
    before the end of the run; within_slo: finished within slo_ms.
    """

    model: str
    slo_ms: float
    offered: int
    rejected: int
    dropped: int
    finished: int
    completed: int
    within_slo: int
    offered_rps: float
    completed_rps: float
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @property
    def slo_attainment(self) -> float | None:
        """Share of offered requests that finished within slo_ms (rejected, dropped: missed)."""
        return self.within_slo / self.offered if self.offered else None

    @property
    def admitted_slo_attainment(self) -> float | None:
        """Share of the requests the router admitted that finished within slo_ms."""
        admitted = self.offered - self.rejected
        return self.within_slo / admitted if admitted else None

    def to_json(self) -> dict:
        return {
            "offered_rps": _r(self.offered_rps),
            "completed_rps": _r(self.completed_rps),
            "mean_ms": _r(self.mean_ms),
            "p50_ms": _r(self.p50_ms),
            "p95_ms": _r(self.p95_ms),
            "p99_ms": _r(self.p99_ms),
            "max_ms": _r(self.max_ms),
            "slo_ms": self.slo_ms,
            "slo_attainment": _r(self.slo_attainment),
            "admitted_slo_attainment": _r(self.admitted_slo_attainment),
            "requests": self.offered,
            "rejected": self.rejected,
            "dropped": self.dropped,
        }


@dataclass(frozen=True)
class GpuResult:
    """Busy share of one GPU over the run (a tensor-parallel group's GPUs are busy together)."""

    gpu_id: str
    gpu_type: str
    utilization: float
    planned_utilization: float

    def to_json(self) -> dict:
        return {"type": self.gpu_type, "utilization": _r(self.utilization),
                "planned_utilization": _r(self.planned_utilization)}


@dataclass(frozen=True)
class SimulationResult:
    models: tuple[ModelResult, ...]
    gpus: tuple[GpuResult, ...]
    duration_s: float
    seed: int
    arrivals: str  # "gamma" (per-model cv from the scenario) or "trace:<path>"
    max_queue_ms: float | None  # None: unbounded queues
    wall_s: float  # not part of the JSON, so the same seed gives the same bytes

    @property
    def requests(self) -> int:
        return sum(m.offered for m in self.models)

    def model(self, name: str) -> ModelResult:
        return next(m for m in self.models if m.model == name)

    def to_json(self) -> dict:
        return {
            "models": {m.model: m.to_json() for m in self.models},
            "gpus": {g.gpu_id: g.to_json() for g in self.gpus},
            "requests": self.requests,
            "duration_s": self.duration_s,
            "seed": self.seed,
            "arrivals": self.arrivals,
            "max_queue_ms": self.max_queue_ms,
        }
