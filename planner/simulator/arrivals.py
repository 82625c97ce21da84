"""Request arrivals, one stream per demand entry, generated window by window (vectorised).

- `GammaArrivals`: a renewal process with Gamma inter-arrival times of mean 1/rate and
  coefficient of variation `cv` (cv = 1 is Poisson, cv = 0 evenly spaced, cv > 1 bursty).
- `TraceArrivals`: replay of a trace's inter-arrival gaps (a CSV with a TIMESTAMP column,
  e.g. the Azure LLM inference traces), time-scaled so the mean rate is the model's rate,
  started at a random point of the trace and looped when the run is longer than the trace.

Every stream draws from its own numpy Generator; draws are kept until used, so the
arrival times do not depend on how the run is cut into windows.
Times are in ms from the start of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from planner.errors import ScenarioError

_BLOCK_MIN = 1024
_BLOCK_MAX = 1 << 20


class ArrivalStream:
    """Base: a stream hands out its arrival times below `end_ms`, in order, once each."""

    def __init__(self) -> None:
        self._last_ms = 0.0  # time of the last generated arrival
        self._pending = np.zeros(0)  # generated, not yet handed out (all >= the last end_ms)

    def _gaps_ms(self, count: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _mean_gap_ms(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def take_until(self, end_ms: float) -> np.ndarray:
        """The arrival times in [previous end_ms, end_ms), sorted."""
        parts = [self._pending]
        while self._last_ms < end_ms:
            # blocks of about a second of traffic, whatever the window: same draws, same sums
            count = int(min(max(1000.0 / self._mean_gap_ms(), _BLOCK_MIN), _BLOCK_MAX))
            times = self._last_ms + np.cumsum(self._gaps_ms(count))
            self._last_ms = float(times[-1])
            parts.append(times)
        times = np.concatenate(parts) if len(parts) > 1 else parts[0]
        cut = int(np.searchsorted(times, end_ms, side="left"))
        self._pending = times[cut:]
        return times[:cut]


class GammaArrivals(ArrivalStream):
    """Gamma inter-arrival times: shape 1/cv^2, mean 1000/rate_rps ms."""

    def __init__(self, rate_rps: float, cv: float, rng: np.random.Generator) -> None:
        super().__init__()
        if rate_rps <= 0:
            raise ValueError("GammaArrivals needs a positive rate")
        self.rate_rps = float(rate_rps)
        self.cv = float(cv)
        self._rng = rng

    def _mean_gap_ms(self) -> float:
        return 1000.0 / self.rate_rps

    def _gaps_ms(self, count: int) -> np.ndarray:
        mean = self._mean_gap_ms()
        if self.cv <= 1e-9:
            return np.full(count, mean)
        if abs(self.cv - 1.0) < 1e-12:
            return self._rng.standard_exponential(count) * mean
        shape = 1.0 / (self.cv * self.cv)
        return self._rng.standard_gamma(shape, count) * (mean / shape)


@dataclass(frozen=True)
class Trace:
    """A trace's inter-arrival gaps (ms, as recorded); the last gap wraps to the first request."""

    source: str
    gaps_ms: np.ndarray

    @property
    def mean_rate_rps(self) -> float:
        return 1000.0 / float(self.gaps_ms.mean())

    @property
    def cv(self) -> float:
        return float(self.gaps_ms.std() / self.gaps_ms.mean())


def load_trace(path: str | Path, column: str = "TIMESTAMP") -> Trace:
    """Read a trace CSV: `column` holds request times (date-times, or numbers in seconds)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ScenarioError(str(path), "no such trace file", "check the path (a CSV with a TIMESTAMP column)")
    try:
        frame = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ScenarioError(str(path), f"cannot read the trace ({exc})", "use a CSV file with a TIMESTAMP column") from None
    if column not in frame.columns:
        raise ScenarioError(str(path), f"no {column} column (columns: {', '.join(map(str, frame.columns))})",
                            f"add a {column} column of request times")
    raw = frame[column]
    try:
        if pd.api.types.is_numeric_dtype(raw):
            seconds = raw.to_numpy(dtype=float)
        else:
            stamps = pd.to_datetime(raw, format="mixed")
            seconds = (stamps - stamps.min()).dt.total_seconds().to_numpy()
    except (ValueError, TypeError) as exc:
        raise ScenarioError(f"{path}: {column}", f"unreadable request times ({exc})",
                            "use date-times like 2023-11-16 18:15:46.68 or numbers of seconds") from None
    seconds = np.sort(seconds[np.isfinite(seconds)])
    if len(seconds) < 2 or seconds[-1] <= seconds[0]:
        raise ScenarioError(f"{path}: {column}", "the trace needs at least two distinct request times",
                            "use a longer trace")
    gaps = np.diff(seconds) * 1000.0
    wrap = float(gaps.mean())  # from the last request back to the first when the trace loops
    return Trace(str(path), np.append(gaps, wrap))


class TraceArrivals(ArrivalStream):
    """A trace's gaps, scaled to `rate_rps`, from a random start, looped."""

    def __init__(self, trace: Trace, rate_rps: float, rng: np.random.Generator) -> None:
        super().__init__()
        if rate_rps <= 0:
            raise ValueError("TraceArrivals needs a positive rate")
        self.rate_rps = float(rate_rps)
        self._gaps = trace.gaps_ms * (trace.mean_rate_rps / rate_rps)
        self._next = int(rng.integers(len(self._gaps)))

    def _mean_gap_ms(self) -> float:
        return 1000.0 / self.rate_rps

    def _gaps_ms(self, count: int) -> np.ndarray:
        index = (self._next + np.arange(count)) % len(self._gaps)
        self._next = int((self._next + count) % len(self._gaps))
        return self._gaps[index]
