# kcm container image: the kcm CLI (from the wheel) on a slim Python base, plus the
# self-contained bundle that `kcm install` puts on hosts for workloads without Python.
# Build: docker build -t ghcr.io/kcm-project/kcm:0.2.0 .

FROM python:3.11-slim AS build
# gcc and libc6-dev build the bundle's static launcher.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kcm ./kcm
COPY bin ./bin
COPY bundle/launcher.c ./bundle/launcher.c
COPY scripts/build-bundle.sh ./scripts/build-bundle.sh
RUN python -m venv /venv \
    && /venv/bin/pip install --no-cache-dir build==1.6.1 \
    && /venv/bin/python -m build --wheel --outdir /dist . \
    && PYTHON=/venv/bin/python bash scripts/build-bundle.sh /bundle

FROM python:3.11-slim
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
COPY --from=build /bundle /usr/local/share/kcm/bundle
# Non-root by default (the webhook); the node agent's pods ask for root explicitly,
# only to write the root-owned hostPath directories, with every capability dropped.
USER 65532:65532
ENTRYPOINT ["kcm"]
CMD ["--help"]
