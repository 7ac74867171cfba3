# The Custos server: dependencies installed from the hashed lock in a build stage, then a
# small runtime stage that runs as an unprivileged user with its state in a volume.
#   docker build -t custos .
# README "Deployment" has the production checklist; compose.yaml adds PostgreSQL.
ARG DEBIAN=debian:bookworm-slim

FROM ${DEBIAN} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first (a layer that changes only with the lock): the run-time part of
# requirements.lock, every package checked against its hash.
COPY pyproject.toml requirements.lock ./
COPY tools/runtime_requirements.py tools/
RUN python3 -m venv /opt/custos \
    && python3 tools/runtime_requirements.py > /tmp/runtime.txt \
    && /opt/custos/bin/pip install --no-cache-dir --disable-pip-version-check \
        --require-hashes -r /tmp/runtime.txt
# The application runs from its source tree (policies/ and migrations/ are read beside it).
COPY alembic.ini ./
COPY policies policies
COPY migrations migrations
COPY schema schema
COPY server server
RUN printf '#!/bin/sh\nexec /opt/custos/bin/python -m server.cli "$@"\n' > /opt/custos/bin/custos \
    && chmod 755 /opt/custos/bin/custos \
    && /opt/custos/bin/python -m compileall -q /app/server /app/schema /app/migrations

FROM ${DEBIAN}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/custos --no-create-home \
        --shell /usr/sbin/nologin custos \
    && install -d -o custos -g custos -m 700 /var/lib/custos
COPY --from=build /opt/custos /opt/custos
COPY --from=build /app /app
# State (keyring, its key store, a SQLite database if no PostgreSQL) lives in CUSTOS_HOME.
ENV PATH=/opt/custos/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CUSTOS_HOME=/var/lib/custos \
    CUSTOS_ENV=prod \
    CUSTOS_HOST=0.0.0.0 \
    CUSTOS_PORT=8000
USER custos:custos
WORKDIR /var/lib/custos
VOLUME ["/var/lib/custos"]
EXPOSE 8000
# Healthy means ready to serve (database writable, keyring readable, migrations at head):
# what `depends_on: service_healthy` and load balancers need; /livez is for restarts.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
ENTRYPOINT ["custos"]
CMD ["serve"]
