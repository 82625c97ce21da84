"""The restricted master over GPU patterns, on HiGHS (highspy).

Rows, one function per family (docs/formulation.md, "Packing"):
- demand (min_cost): sum_p coverage[m,p] x_p >= demand_m, coverage capped at demand_m
  (coefficient tightening);
- presence (min_cost): sum_{p holds m} x_p >= ceil(demand_m / best planned rate of m),
  a valid inequality without which the LP equals the fluid bound;
- served (max_throughput): sum_p coverage[m,p] x_p - served_m >= 0, 0 <= served_m <= demand_m;
- fair share (max_throughput with fairness): served_m >= share x demand_m;
- inventory: sum_{p on t} gpus_p x_p <= count_t;
- tensor-parallel groups in nodes: sum_{p on t, gpus_p >= d} gpus_p x_p <= group_slots(t, d);
- budget: sum_p cost_p x_p <= budget;
- MIR cuts (min_cost, only when `add_cuts` adds them: bench/bench_column_integrality.py does,
  colgen does not): sum_p g(coverage[m,p]) x_p >= ceil(demand_m / delta), see
  solvers.colgen.mir_cuts.
The LP gives duals for pricing; the same rows with integer x give plans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import highspy

from solvers.highs_quiet import quiet_highs
import numpy as np

from planner.problem import PlacementProblem, best_planned_rps
from solvers.colgen.columns import Column, Index
from solvers.colgen.mir_cuts import MirCut

INF = highspy.kHighsInf
MIP_MAX_NODES = 300
FIRST_SOLVE_STRATEGY = 1


@dataclass
class Duals:
    demand: np.ndarray  # per model (>= 0)
    presence: np.ndarray  # per model (>= 0), zeros for max_throughput
    inventory: np.ndarray  # per type (<= 0)
    tp_slots: dict[tuple[int, int], float]  # (type, degree) -> dual (<= 0)
    budget: float  # (<= 0)
    cuts: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per MIR cut (>= 0), Master.cuts' order


@dataclass
class LpSolution:
    value: float  # in the master's own sense: cost (min_cost) or weighted served (max_throughput)
    x: np.ndarray
    duals: Duals
    served: np.ndarray | None


def presence_lower_bounds(problem: PlacementProblem, index: Index) -> np.ndarray:
    """ceil(demand / best planned dedicated rate): replicas every plan needs for each model
    (the best rates computed once per problem: every residual master of the dive asks)."""
    best = best_planned_rps(problem)
    return np.array(
        [math.ceil(d / best[name] - 1e-9) if best.get(name, 0) > 0 else 0 for name, d in zip(index.models, index.demand_rps)],
        dtype=float,
    )


class Master:
    """Restricted master LP/MIP; columns are appended, rows are fixed at construction."""

    def __init__(self, problem: PlacementProblem, index: Index, fair_share: float | None = None,
                 maximize_share: bool = False, used_gpus: dict[int, int] | None = None, used_usd_per_hour: float = 0.0,
                 used_group_gpus: dict[tuple[int, int], int] | None = None, presolve: bool = True):
        """`used_*`: what fixed patterns already take (residual masters): GPUs per type, USD per
        hour, and GPUs in groups of size >= d per (type, d). `presolve=False`: LP solves without
        HiGHS's presolve (solvers.colgen.throughput_dive says why)."""
        self.used_gpus = used_gpus or {}
        self.used_group_gpus = used_group_gpus or {}
        self.used_usd_per_hour = used_usd_per_hour
        self.problem = problem
        self.index = index
        self.min_cost = problem.objective == "min_cost"
        self.columns: list[Column] = []
        self.columns_of_model: list[list[int]] = [[] for _ in index.models]  # column numbers covering each model
        self.cuts: list[MirCut] = []
        self.cut_rows: list[int] = []
        self.cuts_of_model: dict[int, list[int]] = {}  # model -> numbers in self.cuts
        self._solved = False  # the LP has a basis from an earlier solve
        self.mip_stopped_by_clock = False  # the last solve_mip ended on its time limit
        self.highs = quiet_highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("simplex_strategy", 4)  # primal: added columns keep the basis feasible
        self.highs.setOptionValue("random_seed", 0)
        if not presolve:
            self.highs.setOptionValue("presolve", "off")
        self.n_models = len(index.models)
        self._row = 0
        self.served_cols: np.ndarray | None = None
        self.share_col: int | None = None
        self.maximize_share = maximize_share
        if self.min_cost:
            self.demand_rows = self._add_rows(index.demand_rps, np.full(self.n_models, INF))
            self.presence_rows = self._add_rows(presence_lower_bounds(problem, index), np.full(self.n_models, INF))
        else:
            self.demand_rows = self._add_rows(np.zeros(self.n_models), np.full(self.n_models, INF))
            self.presence_rows = None
            self._add_served_columns(fair_share)
        self.slack_cols = self._add_slack_columns() if self.min_cost else np.zeros(0, dtype=np.int64)
        self.inventory_rows = self._add_inventory_rows()
        self.tp_rows = self._add_tp_slot_rows()
        self.budget_row = self._add_budget_row()

    def set_demand(self, demand_rps: np.ndarray, presence: np.ndarray) -> None:
        """min_cost: move the demand and presence rows to new right-hand sides (the columns'
        coefficients keep their caps); the next LP starts with dual simplex, whose basis stays
        dual feasible when only right-hand sides change (solvers.colgen.fair_share)."""
        assert self.min_cost and self.presence_rows is not None, "set_demand: min_cost masters only"
        n = self.n_models
        self.highs.changeRowsBounds(n, self.demand_rows.astype(np.int32), np.asarray(demand_rps, dtype=float),
                                    np.full(n, INF))
        self.highs.changeRowsBounds(n, self.presence_rows.astype(np.int32), np.asarray(presence, dtype=float),
                                    np.full(n, INF))
        self._solved = False

    def gpus_left(self, type_index: int) -> float:
        """GPUs of a type this master may still place (inf without an inventory)."""
        gpu = self.problem.gpu_types[type_index]
        return math.inf if gpu.count is None else gpu.count - self.used_gpus.get(type_index, 0)

    # ------------------------------------------------------------------ row families
    def _add_rows(self, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        n = len(lower)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        self.highs.addRows(n, lower.astype(float), upper.astype(float), 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
        rows = np.arange(self._row, self._row + n)
        self._row += n
        return rows

    def _add_slack_columns(self) -> np.ndarray:
        """Phase-1 artificials on demand and presence rows, priced far above any plan, so the
        LP is feasible from the first iteration; a plan never uses them (fixed to 0 in the MIP)."""
        rows = self.problem.candidates
        usd_per_rps = float((rows.cost_per_hour_usd / rows.planned_rps).max()) if len(rows) else 1.0
        usd_per_gpu = max((g.cost_per_hour_usd for g in self.problem.gpu_types), default=1.0)
        big = 1000.0
        start = self.highs.getNumCol()
        for i in range(self.n_models):
            self.highs.addCol(big * usd_per_rps, 0.0, INF, 1, np.array([self.demand_rows[i]], np.int32), np.array([1.0]))
            self.highs.addCol(big * max(usd_per_gpu, 1e-3), 0.0, INF, 1, np.array([self.presence_rows[i]], np.int32), np.array([1.0]))
        return np.arange(start, start + 2 * self.n_models)

    def _add_served_columns(self, fair_share: float | None) -> None:
        """served_m in [0, demand_m] (or [share x demand, demand] with a fair share), objective -w_m."""
        lower = self.index.demand_rps * (fair_share or 0.0)
        weights = np.zeros(self.n_models) if self.maximize_share else -self.index.priority
        start = self.highs.getNumCol()
        for i in range(self.n_models):
            self.highs.addCol(float(weights[i]), float(lower[i]), float(self.index.demand_rps[i]), 1,
                              np.array([self.demand_rows[i]], np.int32), np.array([-1.0]))
        self.served_cols = np.arange(start, start + self.n_models)
        if self.maximize_share:
            # fairness, stage 1: maximise the common share z with served_m >= z demand_m
            self.share_col = self.highs.getNumCol()
            self.highs.addCol(-1.0, 0.0, 1.0, 0, np.zeros(0, np.int32), np.zeros(0))
            for i in range(self.n_models):
                self.highs.addRow(0.0, INF, 2, np.array([self.served_cols[i], self.share_col], np.int32),
                                  np.array([1.0, -float(self.index.demand_rps[i])]))
                self._row += 1

    def _add_inventory_rows(self) -> dict[int, int]:
        rows = {}
        for t, gpu in enumerate(self.problem.gpu_types):
            if gpu.count is not None:
                left = float(gpu.count - self.used_gpus.get(t, 0))
                rows[t] = int(self._add_rows(np.array([-INF]), np.array([left]))[0])
        return rows

    def _add_tp_slot_rows(self) -> dict[tuple[int, int], int]:
        rows = {}
        for t, gpu in enumerate(self.problem.gpu_types):
            if gpu.count is None:
                continue
            degrees = sorted({o.tensor_parallel for m in self.problem.demanded_models for o in m.options
                              if o.gpu_type == gpu.name and o.tensor_parallel > 1})
            for d in degrees:
                left = float(gpu.group_slots(d) - self.used_group_gpus.get((t, d), 0))
                rows[(t, d)] = int(self._add_rows(np.array([-INF]), np.array([left]))[0])
        return rows

    def _add_budget_row(self) -> int | None:
        if self.problem.budget_usd_per_hour is None:
            return None
        left = float(self.problem.budget_usd_per_hour - self.used_usd_per_hour)
        return int(self._add_rows(np.array([-INF]), np.array([left]))[0])

    # ------------------------------------------------------------------ columns
    def column_entries(self, col: Column) -> tuple[list[int], list[float]]:
        """Row indices and coefficients of a column: its members' demand (and presence) rows,
        its type's inventory and TP-group rows, the budget row."""
        rows, vals = [], []
        presence = self.presence_rows
        for i, cov in zip(col.model_indices, col.coverage_rps):
            rows.append(self.demand_rows[i])
            vals.append(cov)
            if presence is not None:
                rows.append(presence[i])
                vals.append(1.0)
            for k in self.cuts_of_model.get(i, ()):
                coefficient = self.cuts[k].coefficient(cov)
                if coefficient > 0.0:
                    rows.append(self.cut_rows[k])
                    vals.append(coefficient)
        gpus = float(col.gpus)
        if col.type_index in self.inventory_rows:
            rows.append(self.inventory_rows[col.type_index])
            vals.append(gpus)
        for (t, d), row in self.tp_rows.items():
            if t == col.type_index and col.gpus >= d:
                rows.append(row)
                vals.append(gpus)
        if self.budget_row is not None:
            rows.append(self.budget_row)
            vals.append(col.cost_usd_per_hour)
        return rows, vals

    def objective_cost(self, col: Column) -> float:
        return col.cost_usd_per_hour if self.min_cost else 0.0

    def add_columns(self, cols: list[Column]) -> None:
        """Append columns (one HiGHS call for all of them)."""
        if not cols:
            return
        starts, rows, vals, costs = [], [], [], []
        for col in cols:
            col_rows, col_vals = self.column_entries(col)
            starts.append(len(rows))
            rows += col_rows
            vals += col_vals
            costs.append(self.objective_cost(col))
        n = len(cols)
        self.highs.addCols(n, np.array(costs, dtype=float), np.zeros(n), np.full(n, INF), len(rows),
                           np.array(starts, dtype=np.int32), np.array(rows, dtype=np.int32), np.array(vals, dtype=float))
        for j, col in enumerate(cols, start=len(self.columns)):
            for i in col.model_indices:
                self.columns_of_model[i].append(j)
        self.columns += cols

    def add_cuts(self, cuts: list[MirCut]) -> int:
        """Add MIR cut rows over every column so far (later columns get their coefficients in
        `column_entries`). If the LP over the current columns is infeasible with them (tight
        inventory: the cuts hold for every plan, but these columns may not reach them), the
        whole batch is taken out again. Returns the number kept (all or none)."""
        if not cuts:
            return 0
        first = self.first_pattern_col
        before = len(self.cuts)
        starts, index, values = [], [], []
        for cut in cuts:
            starts.append(len(index))
            for j in self.columns_of_model[cut.model]:
                col = self.columns[j]
                coefficient = cut.coefficient(col.coverage_rps[col.model_indices.index(cut.model)])
                if coefficient > 0.0:
                    index.append(first + j)
                    values.append(coefficient)
        n = len(cuts)
        self.highs.addRows(n, np.array([c.rhs for c in cuts]), np.full(n, INF), len(index),
                           np.array(starts, dtype=np.int32), np.array(index, dtype=np.int32), np.array(values, dtype=float))
        for cut in cuts:
            self.cuts_of_model.setdefault(cut.model, []).append(len(self.cuts))
            self.cuts.append(cut)
            self.cut_rows.append(self._row)
            self._row += 1
        self._solved = False  # new rows: the next solve starts with the dual simplex
        if self.solve_lp() is None:  # cannot happen for plans; the restricted columns may not reach a cut
            self.highs.deleteRows(n, np.array(self.cut_rows[before:], dtype=np.int32))
            for cut in self.cuts[before:]:
                self.cuts_of_model[cut.model].pop()
            del self.cuts[before:], self.cut_rows[before:]
            self._row -= n
            self.solve_lp()
            return 0
        return n

    def support_by_model(self, x: np.ndarray) -> list[list[tuple[float, float]]]:
        """Per model, (coverage, LP value) of the columns covering it with x > 0."""
        out: list[list[tuple[float, float]]] = [[] for _ in self.index.models]
        for j in np.nonzero(x > 1e-9)[0].tolist():
            col = self.columns[j]
            for i, cov in zip(col.model_indices, col.coverage_rps):
                out[i].append((cov, float(x[j])))
        return out

    @property
    def first_pattern_col(self) -> int:
        served = 0 if self.served_cols is None else self.n_models + (1 if self.share_col is not None else 0)
        return served + len(self.slack_cols)

    def slack_used(self) -> float:
        if not len(self.slack_cols):
            return 0.0
        values = np.array(self.highs.getSolution().col_value)[self.slack_cols]
        return float(values.sum())

    # ------------------------------------------------------------------ solves
    def solve_lp(self) -> LpSolution | None:
        # the first solve has no basis: dual simplex; later ones follow added columns, where
        # primal simplex keeps the last basis feasible
        self.highs.setOptionValue("simplex_strategy", 4 if self._solved else FIRST_SOLVE_STRATEGY)
        self._solved = True
        self.highs.run()
        if self.highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        sol = self.highs.getSolution()
        col_value = np.array(sol.col_value)
        row_dual = np.array(sol.row_dual)
        duals = Duals(
            demand=row_dual[self.demand_rows] if len(self.demand_rows) else np.zeros(0),
            presence=row_dual[self.presence_rows] if self.presence_rows is not None and len(self.presence_rows) else np.zeros(self.n_models),
            inventory=np.array([row_dual[self.inventory_rows[t]] if t in self.inventory_rows else 0.0
                                for t in range(len(self.problem.gpu_types))]),
            tp_slots={key: float(row_dual[row]) for key, row in self.tp_rows.items()},
            budget=float(row_dual[self.budget_row]) if self.budget_row is not None else 0.0,
            cuts=row_dual[np.array(self.cut_rows, dtype=np.int64)] if self.cut_rows else np.zeros(0),
        )
        value = self.highs.getInfo().objective_function_value
        served = col_value[self.served_cols] if self.served_cols is not None else None
        return LpSolution(value if self.min_cost else -value, col_value[self.first_pattern_col:], duals, served)

    def column_values(self, lp: LpSolution) -> np.ndarray:
        """The LP's value of every column, 0 for columns added after that solve."""
        x = np.zeros(len(self.columns))
        x[: len(lp.x)] = lp.x
        return x

    def shared_support(self, x: np.ndarray) -> list:
        """The shared patterns (two members or more) the LP uses: what the dives carry into
        their next residual master."""
        return [c.pattern for c, v in zip(self.columns, x) if v > 1e-9 and len(c.pattern.members) > 1]

    def reduced_cost(self, col: Column, duals: Duals) -> float:
        return self.objective_cost(col) - self.dual_value(col, duals)

    def dual_value(self, col: Column, duals: Duals) -> float:
        value = 0.0
        for i, cov in zip(col.model_indices, col.coverage_rps):
            value += duals.demand[i] * cov + duals.presence[i]
            for k in self.cuts_of_model.get(i, ()):
                if k < len(duals.cuts):
                    value += duals.cuts[k] * self.cuts[k].coefficient(cov)
        value += self.gpu_dual(col.type_index, col.gpus, duals) + col.cost_usd_per_hour * duals.budget
        return value

    def shared_gpu_constant(self, type_index: int, duals: Duals) -> float:
        """c_t': a one-GPU pattern of a type has reduced cost c_t' - (its members' demand,
        presence and cut duals) (min_cost: its price less the GPU-row and budget duals; the
        constant solvers.colgen.exact_pricing.prove_type bounds profits against)."""
        price = self.problem.gpu_types[type_index].cost_per_hour_usd
        return (price if self.min_cost else 0.0) - self.gpu_dual(type_index, 1, duals) - price * duals.budget

    def gpu_dual(self, type_index: int, gpus: int, duals: Duals) -> float:
        """Dual value (<= 0) of the GPU rows for a pattern of `gpus` GPUs of a type."""
        value = gpus * duals.inventory[type_index]
        for (t, d), dual in duals.tp_slots.items():
            if t == type_index and gpus >= d:
                value += gpus * dual
        return value

    def solve_mip(self, time_limit_s: float, seed: int, start: np.ndarray | None = None,
                  fixed_lower: np.ndarray | None = None, allowed: np.ndarray | None = None,
                  max_nodes: int = MIP_MAX_NODES) -> tuple[np.ndarray | None, float, bool]:
        """Integer master over the current columns (only those in `allowed`, when given).
        Returns (counts, value, proven_optimal_over_columns).

        A `start` turns HiGHS's presolve off: HiGHS 1.x with presolve and a start solution
        can stop at the root, report "optimal" at an objective below its own dual bound and
        hand back the start unchanged (seen at 200 and 1,000 models: reported 1325.98,
        returned 1364.45); without presolve it searches, but slowly at fleet scale."""
        h = quiet_highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("random_seed", int(seed))
        h.setOptionValue("time_limit", max(0.05, float(time_limit_s)))
        h.setOptionValue("mip_max_nodes", int(max_nodes))  # a work limit: same input, same plan
        h.setOptionValue("mip_rel_gap", 1e-4)
        h.passModel(self.highs.getModel())
        n_pat = len(self.columns)
        first = self.first_pattern_col
        if len(self.slack_cols):
            zeros = np.zeros(len(self.slack_cols))
            h.changeColsBounds(len(self.slack_cols), self.slack_cols.astype(np.int32), zeros, zeros)
        h.changeColsIntegrality(n_pat, np.arange(first, first + n_pat, dtype=np.int32),
                                np.full(n_pat, highspy.HighsVarType.kInteger))
        if allowed is not None:
            banned = np.setdiff1d(np.arange(n_pat), allowed)
            if len(banned):
                zeros = np.zeros(len(banned))
                h.changeColsBounds(len(banned), (banned + first).astype(np.int32), zeros, zeros)
        if fixed_lower is not None:
            idx = np.nonzero(fixed_lower > 0)[0]
            if len(idx):
                upper = np.full(len(idx), INF)
                h.changeColsBounds(len(idx), (idx + first).astype(np.int32), fixed_lower[idx].astype(float), upper)
        if start is not None:
            h.setOptionValue("presolve", "off")
            full = np.zeros(h.getNumCol())
            full[first:first + len(start)] = start
            if self.served_cols is not None:
                served = self._served_for(start)
                full[self.served_cols] = served
                if self.share_col is not None:
                    full[self.share_col] = float(np.min(served / self.index.demand_rps))
            sol = highspy.HighsSolution()
            sol.col_value = list(full)
            sol.value_valid = True
            h.setSolution(sol)
        h.run()
        status = h.getModelStatus()
        # the node limit is the work limit; the clock is a guard, and a plan it cut short may
        # depend on the machine's load (callers report that as a time limit)
        self.mip_stopped_by_clock = status == highspy.HighsModelStatus.kTimeLimit
        sol = h.getSolution()
        if not sol.value_valid:
            return None, math.nan, False
        x = np.round(np.array(sol.col_value)[first:first + n_pat]).astype(np.int64)
        value = h.getInfo().objective_function_value
        return x, (value if self.min_cost else -value), status == highspy.HighsModelStatus.kOptimal

    def _served_for(self, counts: np.ndarray) -> np.ndarray:
        cover = np.zeros(self.n_models)
        for col, n in zip(self.columns, counts):
            if n:
                for i, cov in zip(col.model_indices, col.coverage_rps):
                    cover[i] += cov * n
        return np.minimum(cover, self.index.demand_rps)
