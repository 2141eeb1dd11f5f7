# The production image: `docker build -t hexpost .`, or `docker compose up` (compose.yaml).
# Configured by HEXPOST_* variables (README, "Configuration"); HEXPOST_ENV=production requires
# HEXPOST_JWT_SECRET, for `hexpost serve` and `hexpost migrate` alike.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/hexpost
WORKDIR /src
# The dependencies and the packages come from pyproject.toml, as `pip install .` builds them.
COPY pyproject.toml README.md ./
COPY domain domain
COPY application application
COPY adapters adapters
COPY entrypoints entrypoints
COPY migrations migrations
RUN /opt/hexpost/bin/pip install . \
    && /opt/hexpost/bin/hexpost --help > /dev/null

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 hexpost \
    && useradd --system --uid 10001 --gid hexpost --home-dir /var/lib/hexpost --create-home \
        --shell /usr/sbin/nologin hexpost
COPY --from=build /opt/hexpost /opt/hexpost
ENV PATH=/opt/hexpost/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HEXPOST_HOST=0.0.0.0 \
    HEXPOST_PORT=8000
# The embedded defaults (SQLite and the development secret under var/) live here when no
# database or secret is configured.
WORKDIR /var/lib/hexpost
USER 10001:10001
EXPOSE 8000
# Liveness without curl: the image's own Python asks /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HEXPOST_PORT', '8000'), timeout=2)"
CMD ["hexpost", "serve"]
