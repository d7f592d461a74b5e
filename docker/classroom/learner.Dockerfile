# One learner's JupyterLab (compose profile: DockerSpawner; Zero to JupyterHub: the singleuser image). The course is
# in the image twice: /srv/workbook-course (read-only, what a Kubernetes pod copies into its volume at first start) and
# /home/learner/workbook (what Docker copies into a learner's new named volume). Lab solutions are left out unless the
# image is built with --build-arg WITH_SOLUTIONS=1. Not built in CI (no Docker engine there).
FROM python:3.11.7-slim-bookworm

COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir -r /tmp/requirements.lock && rm /tmp/requirements.lock \
    && useradd --create-home --uid 1000 --shell /bin/bash learner
COPY . /srv/workbook-course
ARG WITH_SOLUTIONS=0
RUN if [ "$WITH_SOLUTIONS" != 1 ]; then rm -f /srv/workbook-course/labs/*/solution.ipynb; fi \
    && cp -a /srv/workbook-course /home/learner/workbook && chown -R learner:learner /home/learner/workbook
USER learner
WORKDIR /home/learner/workbook
ENV PYTHONPATH=/home/learner/workbook
CMD ["jupyterhub-singleuser"]
