"""Arrivals (Gamma, trace replay) and the pure batching/routing policies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import policies
from planner.errors import ScenarioError
from planner.simulator import GammaArrivals, TraceArrivals, load_trace

AZURE = Path(__file__).resolve().parents[2] / "shared" / "data" / "azure-llm-inference-2023"
AZURE_CONV = AZURE / "AzureLLMInferenceTrace_conv.csv"
if not AZURE_CONV.is_file():  # the data folder sits next to the checkout
    AZURE_CONV = Path("/work/shared/data/azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv")


@pytest.mark.parametrize("cv", [0.5, 1.0, 2.0])
def test_gamma_arrivals_have_the_rate_and_cv_asked_for(cv):
    stream = GammaArrivals(1000.0, cv, np.random.default_rng(11))
    times = stream.take_until(400_000.0)  # 400 s: about 400k arrivals
    gaps = np.diff(times)
    assert len(times) / 400.0 == pytest.approx(1000.0, rel=0.01)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.03)


def test_cv_zero_is_evenly_spaced_and_windows_hand_out_each_arrival_once():
    stream = GammaArrivals(100.0, 0.0, np.random.default_rng(0))
    parts = [stream.take_until(end) for end in (5.0, 1000.0, 1000.0, 2500.0)]
    times = np.concatenate(parts)
    assert np.allclose(np.diff(times), 10.0)
    assert times[0] == pytest.approx(10.0) and times[-1] < 2500.0 and len(times) == 249
    assert all(p[0] >= lo for p, lo in zip(parts[1:], (5.0, 1000.0, 1000.0)) if len(p))


def test_windows_do_not_change_the_arrivals():
    whole = GammaArrivals(3000.0, 1.5, np.random.default_rng(5)).take_until(20_000.0)
    stream = GammaArrivals(3000.0, 1.5, np.random.default_rng(5))
    pieces = np.concatenate([stream.take_until(end) for end in np.linspace(333.3, 20_000.0, 17)])
    assert np.array_equal(whole, pieces)


def test_trace_is_read_from_its_timestamp_column(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("TIMESTAMP,ContextTokens\n2023-11-16 18:00:00.0,1\n2023-11-16 18:00:00.5,2\n"
                    "2023-11-16 18:00:02.0,3\n2023-11-16 18:00:02.1,4\n")
    trace = load_trace(path)
    assert np.allclose(trace.gaps_ms, [500.0, 1500.0, 100.0, 700.0])  # last gap: the mean, to loop
    stream = TraceArrivals(trace, trace.mean_rate_rps * 10.0, np.random.default_rng(0))  # 10x faster
    gaps = np.diff(stream.take_until(10_000.0))
    assert set(np.round(gaps, 6)) <= {50.0, 150.0, 10.0, 70.0}


def test_azure_trace_replays_at_the_models_rate_with_its_burstiness():
    trace = load_trace(AZURE_CONV)
    assert trace.cv > 1.05  # the real trace is burstier than Poisson (1.09 measured)
    rate_rps = 500.0
    period_ms = trace.gaps_ms.sum() * trace.mean_rate_rps / rate_rps
    times = TraceArrivals(trace, rate_rps, np.random.default_rng(1)).take_until(3 * period_ms)
    assert len(times) == pytest.approx(3 * len(trace.gaps_ms), abs=2)  # whole loops: the mean rate exactly
    gaps = np.diff(times)
    assert gaps.std() / gaps.mean() == pytest.approx(trace.cv, rel=0.01)


def test_bad_traces_are_bad_input(tmp_path):
    with pytest.raises(ScenarioError, match="no such trace file"):
        load_trace(tmp_path / "missing.csv")
    no_column = tmp_path / "no_column.csv"
    no_column.write_text("time,x\n1,2\n")
    with pytest.raises(ScenarioError, match="no TIMESTAMP column"):
        load_trace(no_column)
    one_row = tmp_path / "one.csv"
    one_row.write_text("TIMESTAMP\n3.5\n")
    with pytest.raises(ScenarioError, match="two distinct"):
        load_trace(one_row)


def test_next_batch_size_takes_what_waits_up_to_the_batch():
    assert policies.next_batch_size(0, 8) == 0
    assert policies.next_batch_size(3, 8) == 3
    assert policies.next_batch_size(8, 8) == 8
    assert policies.next_batch_size(50, 8) == 8


def test_next_member_is_round_robin_over_members_with_work():
    assert policies.next_member(0, [True, True, True]) == 0
    assert policies.next_member(1, [True, False, True]) == 2
    assert policies.next_member(2, [True, False, False]) == 0
    assert policies.next_member(1, [False, False, False]) == policies.NO_MEMBER


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=1, max_size=8), st.floats(0.05, 1.0),
       st.lists(st.floats(0.0, 0.999999), min_size=1, max_size=20))
def test_route_and_route_many_agree(shares, admitted, draws):
    cumulative = policies.cumulative_shares(shares, admitted)
    expected = [policies.route(cumulative, u) for u in draws]
    assert list(policies.route_many(cumulative, np.array(draws))) == expected
    for u, r in zip(draws, expected):
        assert (r == policies.NO_REPLICA) == (u >= cumulative[-1])


def test_routing_shares_are_followed():
    cumulative = policies.cumulative_shares([1.0, 3.0], admitted_share=1.0)
    picks = policies.route_many(cumulative, np.random.default_rng(0).random(200_000))
    assert (picks >= 0).all()
    assert np.mean(picks == 1) == pytest.approx(0.75, abs=0.005)
