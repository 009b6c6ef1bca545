FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ivr ./ivr
COPY sip_config ./sip_config
RUN pip install --no-cache-dir .
ENV IVR_STORE_PATH=/data/ivr.sqlite3
VOLUME ["/data"]
CMD ["ivr", "serve"]
