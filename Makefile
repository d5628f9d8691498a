# The two commands: `make run` (the whole platform, embedded, no server needed) and
# `make test` (installs and starts real PostgreSQL, Redis and RabbitMQ, then runs everything).

SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test chart bench bench-gateway fault-matrix proto-docs deps servers servers-stop up down lint fmt clean-data help

help:
	@echo "make run         the whole platform in one process: gateway on http://127.0.0.1:8080"
	@echo "make test        lints and every test, on real PostgreSQL, Redis and RabbitMQ"
	@echo "make chart       lint the Dockerfile, lint, render and validate the Helm chart (part of make test)"
	@echo "make bench       event throughput (bus, outbox), token issuance, revocation reach across gateways, GET /blog, webhook deliveries, POST /Services, notification dispatch"
	@echo "make bench-gateway  the gateway against nginx (wrk), and introspection throughput (PROFILE=1: CPU per request and a flame graph; HOLD=1: only start it)"
	@echo "make fault-matrix  make up's topology under load while each server restarts and each service is killed (part of make test)"
	@echo "make up / down   production topology on this machine: one process per service, real servers"
	@echo "make servers     start the test servers (deploy/servers.sh start); servers-stop stops them"
	@echo "make proto-docs  regenerate proto-docs/asyncapi.json (the bus) and webhooks.json (what partners receive)"

# System libraries diesel links against (PostgreSQL's libpq, SQLite).
deps:
	@deploy/deps.sh

# The bootstrap administrator comes from the environment; without it, dev defaults (printed).
run: deps
	$(CARGO) build --locked -p platform
	@echo "Administrator: $${BOOTSTRAP_ADMIN_USERNAME:-admin} / $${BOOTSTRAP_ADMIN_PASSWORD:-admin-dev-password} (set BOOTSTRAP_ADMIN_USERNAME and BOOTSTRAP_ADMIN_PASSWORD to choose)"
	BOOTSTRAP_ADMIN_USERNAME=$${BOOTSTRAP_ADMIN_USERNAME:-admin} \
	BOOTSTRAP_ADMIN_PASSWORD=$${BOOTSTRAP_ADMIN_PASSWORD:-admin-dev-password} \
	LOG_FORMAT=$${LOG_FORMAT:-pretty} ./target/debug/platform

test: deps
	deploy/test.sh

chart:
	deploy/chart-test.sh

bench: deps
	deploy/servers.sh start
	deploy/stand-ins.sh
	eval "$$(deploy/servers.sh env)" && $(CARGO) bench --locked -p events --bench event_throughput \
		&& $(CARGO) bench --locked -p auth --bench token_throughput \
		&& $(CARGO) bench --locked -p gateway --bench revocation \
		&& $(CARGO) bench --locked -p gateway --bench blog_feed \
		&& $(CARGO) bench --locked -p webhook --bench deliveries \
		&& $(CARGO) bench --locked -p gateway --bench notifications \
		&& $(CARGO) bench --locked -p notification-dispatch --bench dispatch

bench-gateway: deps
	deploy/bench-gateway.sh

fault-matrix: deps
	python3 deploy/fault-matrix.py

proto-docs:
	UPDATE_PROTO_DOCS=1 $(CARGO) test --locked -p events --lib catalogue::tests::proto_docs_match_the_catalogue
	UPDATE_PROTO_DOCS=1 $(CARGO) test --locked -p webhook --lib domain::event_types::tests::proto_docs_match_the_offered_types

servers:
	deploy/servers.sh start

servers-stop:
	deploy/servers.sh stop

up: deps
	deploy/up.sh start

down:
	deploy/up.sh stop

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

clean-data:
	rm -rf data
