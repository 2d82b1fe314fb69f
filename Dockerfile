# kcm container image: the self-contained bundle (a relocatable Python with kcm and its
# dependencies, the binary `kcm install` puts on hosts) on busybox. The same layout as the
# image the real-node tests build and run without a registry (scripts/k8s-node.sh images):
# /usr/local/share/kcm/bundle, /usr/local/bin/kcm -> its launcher, user 65532, ENTRYPOINT kcm.
# Build: docker build -t ghcr.io/kcm-project/kcm:0.2.0 .

FROM python:3.11-slim AS build
# The bundle's launcher ships prebuilt for x86_64 (kcm/launcher/); other machines need
# gcc and libc6-dev here to compile kcm/launcher/launcher.c.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kcm ./kcm
COPY bin ./bin
RUN python -m venv /venv \
    && /venv/bin/pip install --no-cache-dir . \
    && /venv/bin/python -m kcm.bundle /bundle

FROM busybox:1.36
COPY --from=build /bundle /usr/local/share/kcm/bundle
RUN ln -s ../share/kcm/bundle/kcm /usr/local/bin/kcm \
    && echo 'nonroot:x:65532:65532:nonroot:/tmp:/bin/sh' >> /etc/passwd \
    && echo 'nonroot:x:65532:' >> /etc/group
# Non-root by default (the webhook); the node agent's pods ask for root explicitly,
# only to write the root-owned hostPath directories, with every capability dropped.
USER 65532:65532
ENTRYPOINT ["kcm"]
CMD ["--help"]
