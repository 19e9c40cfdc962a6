"""The app's Streamlit settings. With watchdog (the default wherever it is installed, as it is
here), Streamlit watches the app's folder *recursively*, ``.venv`` and ``.git`` included: 8 400
folders. Its inotify watches report every file opened there, so rebuilding them after an overflow
(walking those folders) overflows the queue again: measured, an idle server spent 38 s of CPU
in 60 s in that loop (680 "Inotify queue overflowed" lines), beside the analyses on a 2-core
machine. ``folderWatchBlacklist`` does not stop it (it filters modules, not the folder watch);
polling the app's own files does (0.3 s of CPU in 60 s)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WATCHER_CLASS = """
from streamlit import config
config.get_config_options(force_reparse=True)
from streamlit.watcher.path_watcher import get_default_path_watcher_class
print(config.get_option("server.fileWatcherType"), get_default_path_watcher_class().__name__)
print(config.get_option("runner.fastReruns"))
"""


def test_the_config_polls_instead_of_watching_the_folder_tree():
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert settings["server"]["fileWatcherType"] == "poll"


def test_streamlit_run_in_the_app_folder_picks_the_polling_watcher(tmp_path):
    # What `streamlit run app.py` reads: the project's .streamlit/config.toml (no user config).
    out = subprocess.run(
        [sys.executable, "-c", WATCHER_CLASS],
        cwd=ROOT,
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["poll", "PollingPathWatcher", "False"]


def test_a_pending_click_survives_the_next_rerun_request():
    """Without fast reruns, a request reaches the running script's ScriptRequests, which folds
    it into the pending one: the button's trigger from the first request is kept although the
    second (a text edit's) carries none. This is what fastReruns=false buys."""
    from streamlit.proto.WidgetStates_pb2 import WidgetStates
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests

    def states(**values):
        out = WidgetStates()
        for key, value in values.items():
            widget = out.widgets.add()
            widget.id = key
            if isinstance(value, bool):
                widget.trigger_value = value
            else:
                widget.string_value = value
        return out

    requests = ScriptRequests()
    assert requests.request_rerun(RerunData(widget_states=states(analyze=True, text="old")))
    assert requests.request_rerun(RerunData(widget_states=states(text="new")))
    pending = {w.id: w for w in requests.on_scriptrunner_yield().rerun_data.widget_states.widgets}
    assert pending["analyze"].trigger_value is True
    assert pending["text"].string_value == "new"
