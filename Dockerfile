# The wizard on Cloud Run: pages, and /api/ calls passed to the functions with ID tokens.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/app/shared:/app
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY shared/ shared/
COPY web/ web/
RUN useradd --create-home wizard
USER wizard
CMD exec gunicorn --bind ":${PORT:-8080}" --workers 2 --threads 8 --timeout 120 "web.app:create_app()"
