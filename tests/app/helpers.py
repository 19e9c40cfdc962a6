"""Helpers shared by the AppTest suites: drive the sidebar, read Plotly specs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def plotly_specs(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def decode(array) -> np.ndarray:
    """Plotly sends numpy arrays as base64 typed arrays."""
    if isinstance(array, dict):
        data = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
        shape = [int(n) for n in str(array.get("shape", len(data))).split(",")]
        return data.reshape(shape)
    return np.asarray(array, dtype=np.float32)


def analyze_in_app(at, text: str, *, model: str = "minilm", pair: str = ""):
    at.sidebar.selectbox(key="model_choice").set_value(model).run()
    at.sidebar.text_area(key="text").set_value(text)
    if model != "smollm2":
        at.sidebar.text_input(key="pair").set_value(pair)
    at.sidebar.button(key="analyze").click().run()
    assert not at.exception, at.exception
    return at


def open_app(**params) -> AppTest:
    """The app run once with ``params`` in its address bar; it must not raise."""
    at = AppTest.from_file(APP, default_timeout=180)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at
