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
    assert out.stdout.split() == ["poll", "PollingPathWatcher"]
