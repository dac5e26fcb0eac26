# Quix Cloud's Python template; the app runs as an unprivileged user. Build from the repository root
# (the context holds the shared sources/ package), e.g. for this app:
#   docker build -f pipelines/candles/dockerfile --build-arg MAINAPPPATH=pipelines/candles .
# Pinned to an exact release (bump on purpose): Python 3.12.13 on Debian 12.
FROM python:3.12.13-slim-bookworm

ENV DEBIAN_FRONTEND="noninteractive" \
    PYTHONUNBUFFERED=1 \
    PYTHONIOENCODING=UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH="/app"

# Path of this application inside the repository (Quix Cloud and compose set it).
ARG MAINAPPPATH=.

# The user the app runs as: it owns the state folders and nothing else of /app.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app \
        --shell /usr/sbin/nologin app

WORKDIR /app

COPY "${MAINAPPPATH}/requirements.txt" "${MAINAPPPATH}/requirements.txt"
RUN pip install --no-cache-dir -r "${MAINAPPPATH}/requirements.txt"

COPY . .

# Quix Streams keeps its state in ./state of the working folder, or in /app/state (or
# Quix__Deployment__State__Path) on Quix Cloud, where a Service's persistent volume is mounted
# over it at start: the entrypoint gives that folder to `app` then (see below).
RUN mkdir -p "/app/${MAINAPPPATH}/state" /app/state \
    && chown app:app "/app/${MAINAPPPATH}/state" /app/state

# metrics_port: /metrics, /healthz (alive), /readyz (subscribed, broker reachable)
EXPOSE 9109

WORKDIR "/app/${MAINAPPPATH}"

# Starts as root, as Quix's own templates do: sources/app/entrypoint.py makes the state folder
# `app`'s (a mounted volume too), then runs main.py as `app`; started as another user, it exits
# 2 with what to do if that user cannot write the state folder.
ENTRYPOINT ["python3", "-m", "sources.app.entrypoint", "--user", "app", "--", "python3", "main.py"]
