# carbon: an image with the package and its command line, for running `carbon` against a
# store given by CARBON_DATABASE_URL (for example a team's PostgreSQL).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CARBON_HOME=/home/carbon/.carbon

WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY carbon ./carbon
COPY dashboard ./dashboard
COPY migrations ./migrations
RUN pip install . && rm -rf /src

RUN useradd --create-home --uid 10001 carbon
USER carbon
WORKDIR /home/carbon

ENTRYPOINT ["carbon"]
CMD ["doctor"]
