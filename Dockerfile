# Baton: a small image that runs as a non-root user, with a health check on /healthz.
FROM python:3.11-slim AS build
WORKDIR /src
# exactly the locked versions, each checked against its hash (scripts/lock remakes the file)
COPY requirements.lock ./
RUN python -m venv /venv \
 && /venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock

FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PORT=3000 \
    BATON_DATA_DIR=/data
# a font with Japanese glyphs, for the digest chart in Japanese workspaces
RUN apt-get update && apt-get install -y --no-install-recommends fonts-ipafont-gothic \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app baton && mkdir -p /data && chown baton /data
COPY --from=build /venv /venv
WORKDIR /app
# the code belongs to root and is only readable by baton: a compromised process cannot rewrite it
COPY app.py cli.py settings.py clock.py baton.yml alembic.ini ./
COPY bot ./bot
COPY handoff ./handoff
COPY alerts ./alerts
COPY ingest ./ingest
COPY api ./api
COPY jobs ./jobs
COPY digest ./digest
COPY storage ./storage
COPY model ./model
COPY crm ./crm
COPY accounts ./accounts
USER baton
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT','3000'), timeout=2); sys.exit(0)"
CMD ["python", "app.py", "serve"]
