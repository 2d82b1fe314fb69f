# kcm container image: the kcm CLI (from the wheel) on a slim Python base, plus the
# self-contained bundle that `kcm install` puts on hosts for workloads without Python.
# Build: docker build -t ghcr.io/kcm-project/kcm:0.2.0 .

FROM python:3.11-slim AS build
# The bundle's launcher ships prebuilt for x86_64 (kcm/launcher/); other machines need
# gcc and libc6-dev here to compile kcm/launcher/launcher.c.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kcm ./kcm
COPY bin ./bin
RUN python -m venv /venv \
    && /venv/bin/pip install --no-cache-dir build==1.6.1 \
    && /venv/bin/python -m build --wheel --outdir /dist . \
    && /venv/bin/pip install --no-cache-dir /dist/*.whl \
    && /venv/bin/python -m kcm.bundle /bundle

FROM python:3.11-slim
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
COPY --from=build /bundle /usr/local/share/kcm/bundle
# Non-root by default (the webhook); the node agent's pods ask for root explicitly,
# only to write the root-owned hostPath directories, with every capability dropped.
USER 65532:65532
ENTRYPOINT ["kcm"]
CMD ["--help"]
