# The hub image for Zero to JupyterHub (docker/classroom/z2jh-values.yaml): the chart's own hub image (JupyterHub,
# KubeSpawner, the chart's configuration) plus the classroom's login and progress board. The tag is the chart's
# version. Not built in CI (no Docker engine there): the values are parsed and checked by tests.
FROM quay.io/jupyterhub/k8s-hub:4.4.0

USER root
COPY requirements.lock /tmp/requirements.lock
# The board imports the course map and helpers.aws (boto3): installed at the lock's versions, nothing else upgraded.
RUN grep -E '^(boto3|botocore|jmespath|s3transfer)==' /tmp/requirements.lock > /tmp/pins.txt \
    && pip install --no-cache-dir --no-deps -r /tmp/pins.txt && rm /tmp/requirements.lock /tmp/pins.txt
COPY helpers /srv/workbook/helpers
COPY tools /srv/workbook/tools
USER ${NB_USER:-jovyan}
ENV PYTHONPATH=/srv/workbook
