# LeadStream — every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.local/bin:$(PATH)
UV ?= uv
LS := $(UV) run --frozen leadstream
PYTEST_ARGS ?=

.PHONY: help install infra-up infra-down infra-status run stop test check lint typecheck pytest chaos bench bench-e2e fmt clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

install: ## Install the Python env (locked), Kafka, the registry, FerretDB, PostgreSQL, Redis
	@./infra/install.sh

infra-up: install ## Start the local stack (idempotent) and wait until it is ready
	@$(LS) infra up

infra-down: ## Stop the local stack; leaves no process
	@$(LS) infra down

infra-status: ## Show each server's pid, ports and readiness
	@$(LS) infra status

run: infra-up ## The main job: stack + every service, a 10k-contact sample list through the pipeline
	@$(LS) sample run --rows $(or $(ROWS),10000)

stop: ## Stop every service and the stack; leaves no process
	@$(LS) services down
	@$(LS) infra down

test: install ## Lint, type-check and run the whole suite on the real stack
	@./infra/with-stack.sh $(MAKE) --no-print-directory check

check: lint typecheck pytest ## Lint + types + tests (needs the stack up)

lint:
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .

typecheck:
	@$(UV) run --frozen mypy

pytest:
	@$(UV) run --frozen pytest $(PYTEST_ARGS)

chaos: install ## The fault suite at full size on its own stack (alternate ports): figures in .local/chaos/
	@CHAOS_SCALE=full $(UV) run --frozen pytest tests/chaos -p no:cacheprovider $(PYTEST_ARGS)

bench: infra-up ## Run the benchmarks on the local stack; results appended to docs/benchmarks.md
	@$(UV) run --frozen python -m bench.runtime_passthrough

bench-e2e: infra-up ## Every service end to end on ROWS (1M) contacts, then the Celery baseline
	@$(UV) run --frozen python -m bench.end_to_end --rows $(or $(ROWS),1000000)

fmt: ## Format and autofix
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

clean: stop ## Stop everything and delete its data (.local/)
	@rm -rf .local
