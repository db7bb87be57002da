# One image for every Grim process: the five services, the migrator and the sandbox
# fakes. The command picks the role, e.g. `grim redirect serve --host 0.0.0.0`
# (see docker-compose.yml and deploy/k8s/).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first (pinned by constraints.txt), so a code change reuses this layer.
COPY constraints.txt pyproject.toml README.md ./
COPY grim ./grim
COPY schemas ./schemas
COPY services ./services
RUN pip install --no-cache-dir -c constraints.txt .

# Unprivileged user; /app/.run holds the redirect's click spool and the projector's
# table store (mount volumes there in production).
RUN useradd --system --uid 10001 --home-dir /app grim \
    && mkdir -p /app/.run/redirect-spool /app/.run/projector \
    && chown -R grim /app/.run
USER grim

ENV GRIM_REDIRECT_SPOOL_DIR=/app/.run/redirect-spool \
    GRIM_PROJECTOR_DATA_DIR=/app/.run/projector

ENTRYPOINT ["grim"]
CMD ["--help"]
