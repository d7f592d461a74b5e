# JupyterLab for the classroom compose: the same pinned dependencies as `make lab` (requirements.lock).
FROM python:3.11.7-slim-bookworm

WORKDIR /workbook
COPY requirements.lock pyproject.toml ./
COPY helpers ./helpers
RUN pip install --no-cache-dir -r requirements.lock \
    && pip install --no-cache-dir --no-deps -e . \
    && useradd --create-home learner \
    && chown -R learner /workbook
USER learner

# 0.0.0.0 inside the container only: the compose file publishes the port on the host's 127.0.0.1.
CMD ["jupyter", "lab", "--ServerApp.ip=0.0.0.0", "--ServerApp.port=8888", "--ServerApp.open_browser=False", \
     "--ServerApp.root_dir=/workbook", "--LabApp.default_url=/lab/tree/notebooks/00_welcome.ipynb"]
