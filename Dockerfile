# syntax=docker/dockerfile:1
# rl-order-execution: `docker build -t rl-order-execution .` (CPU torch), then
# `docker run --rm -v "$PWD/output:/app/output" -v "$PWD/config:/app/config" -v "$PWD/db:/app/db"
# rl-order-execution` (or `make docker-build docker-run`). CUDA torch:
# `--build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu<version>` and `docker run --gpus all`.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---- build: a self-contained virtual environment in /opt/venv --------------------------------
FROM ${PYTHON_IMAGE} AS build

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

# torch first, from the chosen index (CPU by default), so the package install below reuses it
# and this layer stays cached while the sources change.
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir . \
    && python -c "import torch, rl_order_execution; print('torch', torch.__version__)"

# ---- runtime: the venv, the default config, a non-root user; mount output/, config/ and db/ ----
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="rl-order-execution" \
      org.opencontainers.image.description="Optimal trade execution with deep reinforcement learning" \
      org.opencontainers.image.licenses="MIT"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib

RUN groupadd --system --gid 1000 app \
    && useradd --system --uid 1000 --gid app --create-home --home-dir /home/app app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
COPY --chown=app:app config/config.yaml ./config/config.yaml
RUN mkdir -p output db && chown app:app /app /app/output /app/db

# Numeric ids (app:app); `make docker-run` runs as the host user instead so that files written
# to the mounted output/ and db/ belong to that user.
USER 1000:1000

ENTRYPOINT ["rl-exec"]
CMD ["run"]
