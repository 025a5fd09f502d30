"""MediaPipe's native INFO / WARNING lines are kept off fd 2; everything else written there still arrives."""

from __future__ import annotations

import os
import sys

import pytest

from hmore.priors.native_log import filter_lines, filter_native_stderr, is_native_noise

WARN = b"W0000 00:00:1796217638.577880   23264 inference_feedback_manager.cc:114] Feedback manager requires ...\n"
WARN_FORMATTED = b"I1202 13:20:01.123456    901 landmark_projection_calculator.cc:186] Using NORM_RECT ...\n"
ERROR = b"E0000 00:00:1796217638.577880   23264 calculator_graph.cc:887] INTERNAL: model failed\n"


def test_only_absl_info_and_warning_lines_and_tflite_start_up_are_noise() -> None:
    assert is_native_noise(WARN) and is_native_noise(WARN_FORMATTED)
    assert is_native_noise(b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert is_native_noise(b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    assert not is_native_noise(ERROR)
    assert not is_native_noise(b"WARNING hmore.priors: tiny.avi: people under 32 px\n")
    assert not is_native_noise(b"hmore flow: error: cannot open video x.mp4\n")
    assert filter_lines(b"a\n" + WARN + b"b\r\n" + ERROR + b"tail") == b"a\nb\r\n" + ERROR + b"tail"


def test_block_hides_native_noise_and_passes_on_the_rest(capfd: pytest.CaptureFixture[str]) -> None:
    with filter_native_stderr():
        os.write(2, WARN)
        with filter_native_stderr():  # nested: one capture
            os.write(2, ERROR)
        print("python side", file=sys.stderr, flush=True)
        os.write(2, WARN_FORMATTED)
    os.write(2, b"after\n")
    err = capfd.readouterr().err  # (pytest keeps Python-level and fd-level writes apart: no order between them)
    assert sorted(err.splitlines(keepends=True)) == sorted([ERROR.decode(), "python side\n", "after\n"])


def test_block_restores_fd2_and_replays_when_the_block_raises(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError, match="boom"), filter_native_stderr():
        os.write(2, WARN + b"kept before the error\n")
        raise RuntimeError("boom")
    os.write(2, WARN)  # outside any block: not filtered
    err = capfd.readouterr().err
    assert err == "kept before the error\n" + WARN.decode()


def test_release_hands_fd2_back_while_a_block_is_still_open(capfd: pytest.CaptureFixture[str]) -> None:
    """What atexit does when a thread still holds fd 2: the captured message arrives, later writes go straight out,
    and the open block's own exit then has nothing left to do."""
    from hmore.priors.native_log import release

    with filter_native_stderr():
        os.write(2, WARN + b"hmore flow: error: something failed\n")
        release()
        os.write(2, b"straight out\n")
    err = capfd.readouterr().err
    assert err == "hmore flow: error: something failed\nstraight out\n"
