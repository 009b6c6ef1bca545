# The gateway: the wheel and its dependencies' wheels, built outside (`make images`, or
# `pip wheel -w docker-context/wheels .`), installed without an index into /opt/ivr.
# Runs as a user of its own; the root file system can be read-only (state in a volume).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN if ! python3 -c "import ensurepip, venv" 2>/dev/null; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/ivr \
 && /opt/ivr/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels ivr-phone-auth \
 && rm -rf /tmp/wheels \
 && useradd --system --uid 10001 --home-dir /var/lib/ivr --create-home --shell /usr/sbin/nologin ivr
ENV PATH=/opt/ivr/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    IVR_STORE_PATH=/var/lib/ivr/ivr.sqlite3 \
    IVR_LOG_FORMAT=json
USER ivr
WORKDIR /var/lib/ivr
VOLUME ["/var/lib/ivr"]
# /readyz of the API the settings describe (whatever port IVR_CONFIG or IVR_API_PORT set).
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 CMD ["/opt/ivr/bin/ivr", "health"]
ENTRYPOINT ["/opt/ivr/bin/ivr"]
CMD ["serve"]
