"""HiGHS instances that print nothing: highspy writes a banner to the process's stdout when
an instance is created, which would corrupt `--format json` output."""

from __future__ import annotations

import os
import sys

import highspy


def quiet_highs(**options) -> highspy.Highs:
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        highs = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    highs.setOptionValue("output_flag", False)
    for key, value in options.items():
        highs.setOptionValue(key, value)
    return highs
