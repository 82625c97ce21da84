"""Safe files: a write killed mid-way leaves the previous file whole and no temporary file;
concurrent writers never interleave; the same input and seed give the same bytes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import planner.atomic as atomic
from planner.atomic import remove_stale_temps, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
PLANNER = [sys.executable, "-c", "from planner.cli import main; main()"]

# A child that blocks inside the atomic write (in fsync, after the data went out) and says so.
_BLOCK_IN_FSYNC = """
import os, sys, time
from pathlib import Path
import planner.atomic as atomic
force_named = sys.argv[3] == "named"
if force_named:
    atomic._open_anonymous = lambda folder: None
def slow_fsync(fd):
    Path(sys.argv[2]).write_text("writing")
    time.sleep(60)
os.fsync = slow_fsync
atomic.write_text_atomic(Path(sys.argv[1]), "x" * 50_000_000)
"""


def kill_mid_write(target: Path, mode: str) -> None:
    marker = target.parent / "marker"
    child = subprocess.Popen([sys.executable, "-c", _BLOCK_IN_FSYNC, str(target), str(marker), mode], cwd=ROOT)
    try:
        for _ in range(600):
            if marker.exists() or child.poll() is not None:
                break
            time.sleep(0.05)
        assert marker.exists(), "the child never reached the write"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    marker.unlink()
    assert child.returncode == -signal.SIGKILL


def test_killed_write_leaves_the_previous_file_and_no_temp_file(tmp_path):
    target = tmp_path / "plan.json"
    target.write_text('{"previous": true}\n')
    kill_mid_write(target, "anonymous")
    assert target.read_text() == '{"previous": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def test_temp_file_of_a_killed_named_write_is_removed_by_the_next_write(tmp_path):
    # where O_TMPFILE is missing the temporary file has a name; SIGKILL leaves it behind
    target = tmp_path / "plan.json"
    target.write_text("previous\n")
    kill_mid_write(target, "named")
    assert target.read_text() == "previous\n"
    leftovers = [p for p in tmp_path.iterdir() if p.name != "plan.json"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".plan.json.")
    write_text_atomic(target, "next\n")
    assert target.read_text() == "next\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def test_a_live_writers_temp_file_is_not_removed(tmp_path):
    target = tmp_path / "plan.json"
    live = tmp_path / f".plan.json.{os.getpid()}.abcd1234.tmp"
    live.write_text("in progress")
    assert remove_stale_temps(target) == []
    assert live.exists()


@pytest.mark.parametrize("anonymous", [True, False])
def test_failed_rename_keeps_the_previous_file_and_no_temp(tmp_path, monkeypatch, anonymous):
    target = tmp_path / "plan.json"
    target.write_text("previous\n")
    if not anonymous:
        monkeypatch.setattr(atomic, "_open_anonymous", lambda folder: None)

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(OSError):
        write_text_atomic(target, "new\n")
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def test_written_file_is_readable_by_others_like_any_new_file(tmp_path):
    target = tmp_path / "plan.json"
    write_text_atomic(target, "{}\n")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_concurrent_writers_never_interleave(tmp_path):
    target = tmp_path / "plan.json"
    texts = [json.dumps({"writer": i, "pad": str(i) * 200_000}) + "\n" for i in range(4)]
    write_text_atomic(target, texts[0])
    seen, stop, errors = set(), threading.Event(), []

    def reader():
        while not stop.is_set():
            seen.add(target.read_text())

    def writer(text):
        try:
            for _ in range(20):
                write_text_atomic(target, text)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader)] + [threading.Thread(target=writer, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert errors == []
    assert seen <= set(texts), "a reader saw a file that no writer wrote whole"
    assert target.read_text() in texts
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def without_wall_time(text: str) -> str:
    plan = json.loads(text)
    plan["solver"].pop("wall_s")
    return json.dumps(plan, indent=2)


def test_two_planner_processes_writing_the_same_out_leave_one_whole_plan(tmp_path):
    out = tmp_path / "plan.json"
    runs = [subprocess.Popen([*PLANNER, "plan", str(QUICKSTART), "--out", str(out), "--seed", str(seed), "--format", "json"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    written = out.read_text()
    plan = json.loads(written)  # whole, parseable
    assert written in {stdout for stdout, _ in outputs}
    assert plan["status"] in {"optimal", "feasible"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def test_same_input_and_seed_give_byte_identical_plans_across_processes(tmp_path):
    texts = []
    for i, hash_seed in enumerate(("1", "987")):
        out = tmp_path / f"plan{i}.json"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([*PLANNER, "plan", str(QUICKSTART), "--out", str(out), "--seed", "7"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        texts.append(out.read_text())
    assert without_wall_time(texts[0]) == without_wall_time(texts[1])
    strip = [[line for line in t.splitlines() if '"wall_s"' not in line] for t in texts]
    assert strip[0] == strip[1], "byte-identical apart from the wall_s line"


def test_infeasible_plans_are_byte_identical_too(tmp_path):
    import yaml

    raw = yaml.safe_load(QUICKSTART.read_text())
    for g in raw["gpu_types"]:
        g["count"] = 1
    scenario = tmp_path / "short.yaml"
    scenario.write_text(yaml.safe_dump(raw))
    texts = []
    for i in range(2):
        out = tmp_path / f"p{i}.json"
        done = subprocess.run([*PLANNER, "plan", str(scenario), "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1, done.stderr
        texts.append(without_wall_time(out.read_text()))
    assert texts[0] == texts[1]
    assert '"inventory_short"' in texts[0]
