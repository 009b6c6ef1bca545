# Debian's Kamailio at the SIP edge; its config (`ivr trunks render` with [edge]) is
# mounted at /etc/kamailio-ivr (render with --edge-base /etc/kamailio-ivr).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN if ! dpkg -s kamailio >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends kamailio \
        && rm -rf /var/lib/apt/lists/*; \
    fi
VOLUME ["/etc/kamailio-ivr"]
CMD ["kamailio", "-DD", "-E", "-f", "/etc/kamailio-ivr/kamailio.cfg", "-Y", "/etc/kamailio-ivr", "-m", "64", "-M", "8"]
