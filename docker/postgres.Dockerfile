# Debian's PostgreSQL 15 for the gateways' shared store, initialised on first start.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN if ! dpkg -s postgresql-15 >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
 && mkdir -p /var/lib/ivr-postgres /run/postgresql \
 && chown postgres:postgres /var/lib/ivr-postgres /run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/ivr-postgres
USER postgres
VOLUME ["/var/lib/ivr-postgres"]
ENTRYPOINT ["/usr/local/bin/ivr-postgres"]
