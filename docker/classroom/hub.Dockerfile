# The classroom hub for the compose profile (docker/classroom/compose.yml): JupyterHub, its proxy, the progress board
# and DockerSpawner, from the same lock as `make classroom`. It starts one learner container per learner through the
# Docker socket the compose file mounts. Not built in CI (no Docker engine there): the compose file is parsed and
# checked by tests/classroom/test_generate.py.
FROM node:20.20.2-bookworm-slim AS node

FROM python:3.11.7-slim-bookworm
# configurable-http-proxy needs Node.js 20 (Debian bookworm's own is 18).
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/workbook
COPY requirements.lock pyproject.toml ./
# dockerspawner is the one package this image adds to the lock (it is of no use where `make classroom` runs).
RUN pip install --no-cache-dir -r requirements.lock dockerspawner==14.0.0
COPY helpers ./helpers
COPY tools ./tools
COPY notebooks ./notebooks
COPY labs ./labs
RUN pip install --no-cache-dir --no-deps -e . && python -m tools.classroom install
ARG WORKBOOK_COMMIT=unknown
ENV WORKBOOK_COMMIT=${WORKBOOK_COMMIT} PYTHONPATH=/srv/workbook
CMD ["python", "-m", "tools.classroom", "start", "--spawner", "docker", "--ip", "0.0.0.0", "--state-dir", "/srv/classroom"]
