"""The digits example (tracegrad.examples.digits) trains at a reduced epoch count."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")


def test_digits_example_trains_and_plots(tmp_path):
    from tracegrad.examples import digits

    out = io.StringIO()
    png = tmp_path / "curves.png"
    h = digits.train(epochs=2, png=str(png), stream=out)
    assert h["loss"][1] < h["loss"][0]
    assert h["test_acc"][-1] > 0.75
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    text = out.getvalue()
    assert "epoch   2/2 [" in text and "test acc" in text
    c = h["step"].counters
    assert c.compiles == 1 and c.fallbacks == 0 and c.replays == c.calls - 1
