# carbon: the team server (and the `carbon` command line) in a slim image, without torch.
#
#   docker build -t carbon .
#   docker run --rm -e CARBON_DATABASE_URL=postgresql+psycopg://... carbon db upgrade
#   docker run --rm -e CARBON_DATABASE_URL=... carbon admin create-team acme
#   docker run --rm -e CARBON_DATABASE_URL=... carbon admin create-key --team acme --role ingest
#   docker run -d -p 8000:8000 -e CARBON_DATABASE_URL=... carbon
#
# Off loopback the server requires API keys and refuses to start while the store has none.
# Without CARBON_DATABASE_URL the store is SQLite in /data (mount a volume there).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CARBON_HOME=/data

# PDF reports: WeasyPrint lays text out with Pango and HarfBuzz; DejaVu gives it fonts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY carbon ./carbon
COPY dashboard ./dashboard
COPY migrations ./migrations
RUN pip install . && rm -rf /src

RUN useradd --create-home --uid 10001 carbon \
    && mkdir -p /data \
    && chown carbon:carbon /data
USER carbon
WORKDIR /home/carbon
VOLUME ["/data"]

EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["carbon"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
