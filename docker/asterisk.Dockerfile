# The same Debian Asterisk package the chroot runs, for machines with a Docker engine.
FROM debian:sid-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        asterisk asterisk-core-sounds-en-wav \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /ivr/docker/etc /ivr/docker/run /ivr/docker/log /ivr/docker/db /ivr/docker/spool
# The config is rendered by `ivr trunks render --out docker/etc --base /ivr/docker`
# and mounted at /ivr/docker/etc (see compose.yaml).
CMD ["/usr/sbin/asterisk", "-f", "-n", "-C", "/ivr/docker/etc/asterisk.conf"]
