# The targets the README, CI and people use. Everything needs root (apt, chroot).
VENV ?= .venv
IVR := $(VENV)/bin/ivr
PYTEST_ARGS ?=

.PHONY: help deps run portal screenshots pbx-up pbx-down cluster cluster-down test unit lint fmt bench soak bench-cluster chaos images dist prompts clean

help:
	@echo "make run    - install, start the local Asterisk and the gateway (Ctrl-C stops the gateway)"
	@echo "make test   - install, start a test Asterisk, run every test"
	@echo "make portal - Asterisk, the gateway and the reference portal with demo holders (:8090)"
	@echo "make screenshots - the browser tests, saving their screenshots in docs/screenshots"
	@echo "make unit   - the tests that need no server, no network, no Asterisk"
	@echo "make lint   - ruff and mypy"
	@echo "make chaos  - schemathesis with every check against /openapi.json"
	@echo "make pbx-up / pbx-down - the local development Asterisk"
	@echo "make run STORE=postgres - the same on a private local PostgreSQL (ivr pg up|down)"
	@echo "make cluster / cluster-down - Kamailio, two Asterisk nodes, two gateways, PostgreSQL"
	@echo "make soak   - 100,000 calls at half the ceiling: memory and latency over time"
	@echo "make bench-cluster - calls/s through Kamailio and two nodes against one node"
	@echo "make images - the container images, built offline (docker/, docs/deploy.md)"
	@echo "make dist   - the wheel and the sdist in dist/"
	@echo "make prompts - synthesise the prompts again (Open JTalk for Japanese, espeak-ng for English)"

deps:
	@scripts/bootstrap

# STORE=postgres: a private local PostgreSQL (`ivr pg up`, port 15432) instead of SQLite.
STORE ?= sqlite
PG_URL ?= postgresql://ivr@127.0.0.1:15432/ivr

run: deps
	$(IVR) pbx up
ifeq ($(STORE),postgres)
	$(IVR) pg up
	IVR_STORE_URL=$(PG_URL) $(IVR) serve
else
	$(IVR) serve
endif

pbx-up: deps
	$(IVR) pbx up

pbx-down: deps
	$(IVR) pbx down

# The whole topology on loopback (ivr/data/cluster.toml; docs/scaling.md): carriers send
# to Kamailio on 127.0.0.1:15070, the API is on 8081 and 8082. `ivr cluster status`.
# The local Asterisk, the gateway and the reference portal (examples/portal) with demo
# holders: http://127.0.0.1:8090/login.
portal: deps
	scripts/portal

# The browser tests, keeping their screenshots in docs/screenshots.
screenshots: deps
	IVR_SCREENSHOTS=docs/screenshots $(VENV)/bin/pytest tests/browser

cluster: deps
	$(IVR) cluster up

cluster-down: deps
	$(IVR) cluster down

test: deps
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# No server, no network, no Asterisk: the domain's rules, the call flow on a fake ARI,
# settings, the CLI (seconds). tests/api, tests/contract and tests/integration run in
# `make test`.
unit: deps
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

lint: deps
	$(VENV)/bin/ruff check ivr tests bench chaos examples
	$(VENV)/bin/ruff format --check ivr tests bench chaos examples
	$(VENV)/bin/mypy

fmt: deps
	$(VENV)/bin/ruff format ivr tests bench chaos examples
	$(VENV)/bin/ruff check --fix ivr tests bench chaos

# The container images (gateway, Asterisk, PostgreSQL, Kamailio) on bases made with
# debootstrap and `docker import`: no registry needed. Starts dockerd if none answers.
images: deps
	$(VENV)/bin/python -m ivr.devtools.images

# The release artefacts: wheel and sdist, version from pyproject.toml.
dist: deps
	rm -rf dist
	$(VENV)/bin/python -m build --outdir dist .

# The shipped prompts from ivr/data/prompts/texts.toml (byte-for-byte reproducible).
prompts: deps
	$(VENV)/bin/ivr prompts build

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

bench: deps
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

# 100,000 calls at half the ceiling: RSS of Asterisk and the gateway every 10 s, latency
# per 10,000 calls (about 15 minutes; SOAK_ARGS="--calls 20000" for a short one).
soak: deps
	$(VENV)/bin/python -m bench.soak $(SOAK_ARGS)

# Calls/s through Kamailio and two Asterisk nodes against one node alone, each
# process's CPU (docs/benchmarks.md, "The edge").
bench-cluster: deps
	$(VENV)/bin/python -m bench.cluster $(BENCH_ARGS)

# The chaos and fuzz suite (not part of `make test`): faults under load, hostile caller
# identities, schemathesis with every check; prints a table (docs/chaos.md).
chaos: deps
	$(VENV)/bin/python -m chaos.run $(CHAOS_ARGS)
