# One image for the Celery workers and the `hw3-submit` CLI (docker-compose.yml runs it; docs/docker.md).
#
#   docker build -t hw3 .                           workers and CLI (the last stage, `runtime`)
#   docker build --target flower -t hw3-flower .    the optional Flower monitor
#
# The dependencies, pinned by constraints.txt, are installed into /opt/venv before any code is copied, so a
# code change rebuilds only the last layers. No BuildKit-only syntax (heredocs, cache mounts), so any builder
# builds it.

ARG PYTHON_IMAGE=python:3.11-slim

# --- deps: pyproject's dependencies with the keras and postgres extras, pinned, in a virtualenv ---------------
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY pyproject.toml constraints.txt ./
# The dependency list is read from pyproject.toml, so it is written down in one place only. TensorFlow's C++
# headers (290 MB) only serve to compile custom ops and are dropped.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
x = p['optional-dependencies']; print('\n'.join(p['dependencies'] + x['keras'] + x['postgres']))" \
      > requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install -c constraints.txt -r requirements.txt setuptools==80.9.0 \
 && rm -rf /opt/venv/lib/python3.11/site-packages/tensorflow/include

# --- flower: the optional monitor (`docker compose --profile monitor up`); it needs the broker, not the code ----
FROM ${PYTHON_IMAGE} AS flower
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/flower/bin:$PATH HOME=/tmp
COPY constraints.txt /tmp/constraints.txt
RUN python -m venv /opt/flower \
 && /opt/flower/bin/pip install -c /tmp/constraints.txt "celery[redis]" flower==2.0.1 tornado==6.6.1 \
      prometheus_client==0.26.0 humanize==4.17.0 pytz==2026.6 \
 && rm -f /tmp/constraints.txt \
 && groupadd --gid 1000 flower && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /tmp flower
USER 1000:1000
EXPOSE 5555
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s CMD python -c "import urllib.request; \
urllib.request.urlopen('http://127.0.0.1:5555/healthcheck', timeout=5)"
CMD ["sh", "-c", "exec celery --broker=\"$CELERY_BROKER_URL\" flower --address=0.0.0.0 --port=5555"]

# --- runtime: workers and CLI -------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# HOME, MPLCONFIGDIR and KERAS_HOME are writable whatever uid compose runs the image as (HW3_UID)
ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib KERAS_HOME=/tmp/keras \
    HW3_DATA=/data HW3_CONCURRENCY=2
RUN groupadd --gid 1000 hw3 && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /tmp hw3 \
 && mkdir -p /data/datasets && chown -R 1000:1000 /data
WORKDIR /app
COPY --from=deps /opt/venv /opt/venv
# .dockerignore lets through only pyproject.toml, constraints.txt and the api, worker and shared packages
COPY . .
# the project alone (its dependencies are already there); build leftovers go in the same layer
RUN pip install --no-deps --no-build-isolation . && rm -rf build *.egg-info
USER 1000:1000
# A worker names itself worker-<random>@<host> so that replicas sharing a host name (host networking) stay
# distinct, and writes the name down so that the health check pings exactly this node. (The ping needs a
# broker with broadcast, Redis: with the embedded SQLite broker the check reports unhealthy.)
HEALTHCHECK --interval=30s --timeout=25s --start-period=2m --retries=3 \
  CMD celery -A worker.app inspect ping --timeout 10 --destination "$(cat /tmp/hw3-worker-name)" >/dev/null
CMD name="worker-$(od -An -N4 -tx1 /dev/urandom | tr -dc 0-9a-f)@$(cat /proc/sys/kernel/hostname)" \
 && echo "$name" > /tmp/hw3-worker-name \
 && exec hw3-submit worker --concurrency "$HW3_CONCURRENCY" --name "$name"
