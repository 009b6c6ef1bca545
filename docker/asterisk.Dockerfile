# Debian's Asterisk package (the chroot of `ivr pbx up` runs the same one). Built offline
# by `make images` on a base imported from that chroot; with a registry, the default
# BASE pulls it instead and apt installs the package.
ARG BASE=debian:sid-slim
FROM ${BASE}
RUN if ! dpkg -s asterisk libjemalloc2 >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            asterisk asterisk-core-sounds-en-wav libjemalloc2 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
 && mkdir -p /ivr/docker/etc /ivr/docker/run /ivr/docker/log /ivr/docker/db \
        /ivr/docker/spool /ivr/docker/sounds
# /ivr/docker is a volume: `ivr trunks render --out /ivr/docker/etc --base /ivr/docker
# --prompts-out /ivr/docker/sounds` fills it (the compose file's `render` service).
VOLUME ["/ivr/docker"]
STOPSIGNAL SIGTERM
# The volume may come from the render step, without the run-time directories: make them.
# Asterisk runs on jemalloc, as `ivr pbx up` runs it (docs/operations.md: its RSS stays
# flat instead of keeping the most memory it ever needed at once).
CMD ["/bin/sh", "-c", "mkdir -p /ivr/docker/run /ivr/docker/log /ivr/docker/db /ivr/docker/spool && exec env LD_PRELOAD=$(echo /usr/lib/*/libjemalloc.so.2) /usr/sbin/asterisk -f -n -C /ivr/docker/etc/asterisk.conf"]
