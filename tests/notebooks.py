"""The example notebook, executed once a test process: headless, through nbclient and the
project's own kernel (ipykernel in .venv; jupyter_client starts it with this interpreter)."""

from __future__ import annotations

import base64
import functools
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "examples" / "attnscope_tour.ipynb"
STATE = "application/vnd.jupyter.widget-state+json"


@dataclass(frozen=True)
class Executed:
    notebook: nbformat.NotebookNode
    seconds: float

    def stdout(self) -> str:
        return "".join(
            output.get("text", "")
            for cell in self.notebook.cells
            if cell.cell_type == "code"
            for output in cell.outputs
            if output.output_type == "stream" and output.get("name") == "stdout"
        )

    def widgets(self) -> list[dict]:
        """The anywidgets' saved states, payload buffers decoded, in creation order."""
        models = self.notebook.metadata["widgets"][STATE]["state"].values()
        found = []
        for model in models:
            if model["model_name"] != "AnyModel":
                continue
            state = dict(model["state"])
            for buffer in model.get("buffers", []):
                (name,) = buffer["path"]
                state[name] = base64.b64decode(buffer["data"])
            found.append(state)
        return found


@functools.cache
def executed_tour() -> Executed:
    """Runs every cell (nbclient raises CellExecutionError on the first error)."""
    notebook = nbformat.read(TOUR, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(TOUR.parent)}},
    )
    started = time.perf_counter()
    client.execute()
    return Executed(notebook, time.perf_counter() - started)
