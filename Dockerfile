# The wizard on Cloud Run: pages, and /api/ calls passed to the functions with ID tokens.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# The pinned requirements first, in a layer of their own: it stays cached while the code changes.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
# The etlwizard library, installed as the package pyproject.toml describes (its requirements are met).
COPY pyproject.toml requirements-dev.txt ./
COPY shared/ shared/
RUN pip install --no-cache-dir --no-deps . && rm -rf shared build
# The wizard's `web` package, imported from /app (gunicorn's working directory).
COPY web/ web/
RUN useradd --create-home wizard
USER wizard
# Requests wait on the etl_api function most of their time: threads serve them in parallel, two
# workers keep one busy worker from holding up the rest; infra/ sets Cloud Run's concurrency to
# workers x threads, so a 33rd request starts another instance instead of queueing here.
CMD exec gunicorn --bind ":${PORT:-8080}" --workers 2 --threads 16 --timeout 120 "web.app:create_app()"
