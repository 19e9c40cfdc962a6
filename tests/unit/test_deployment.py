"""The deployment files agree with the project: Spaces front matter, Dockerfile, config."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pinned(package: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==")[1].strip()
    raise AssertionError(f"{package} is not pinned")


def test_readme_front_matter_for_hugging_face_spaces():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    front = text.split("---\n")[1]
    fields = dict(line.split(": ", 1) for line in front.strip().splitlines())
    assert fields["sdk"] == "streamlit"
    assert fields["app_file"] == "app.py"
    assert fields["sdk_version"] == pinned("streamlit")


def test_dockerfile_runs_as_a_user_with_cpu_torch_and_a_health_check():
    docker = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER attnscope$", docker, re.M)
    assert "download.pytorch.org/whl/cpu" in docker and "grep -E '^torch=='" in docker
    assert "HEALTHCHECK" in docker and "/_stcore/health" in docker
    assert "ATTNSCOPE_DEMO=1" in docker
    assert docker.index("USER attnscope") < docker.index("load_model('smollm2')")


def test_the_image_and_spaces_get_the_chromium_and_fonts_figure_downloads_need():
    """viz/export.py renders figure files in the system Chromium (Japanese labels need CJK
    fonts); without them the download control can only say so."""
    from viz.export import CHROMIUM_CANDIDATES

    docker = (ROOT / "Dockerfile").read_text()
    install = re.search(r"apt-get install -y --no-install-recommends ([^\\\n&]+)", docker)
    assert install and set(install.group(1).split()) == {"chromium", "fonts-noto-cjk"}
    assert docker.index("apt-get install") < docker.index("USER attnscope")  # needs root
    assert "/usr/bin/chromium" in CHROMIUM_CANDIDATES  # where Debian's package puts it
    spaces = (ROOT / "packages.txt").read_text().split()
    assert spaces == ["chromium", "fonts-noto-cjk"]


def test_streamlit_config_is_valid_and_sends_no_usage_stats():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["toolbarMode"] == "minimal"


def test_every_runtime_requirement_is_pinned_exactly():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.+-]*", line.strip()), line
