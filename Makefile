# koel — two commands on a fresh Debian machine:
#   make run    build koel and start it with the demo bot
#   make test   install what is missing and run every test
#
# System packages are installed with apt-get when running as root; otherwise
# the exact command to run is printed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin/koel
GOFLAGS_TEST ?= -race
TEST_TIMEOUT ?= 30m
PKGS      := ./...

# Debian packages: what `make run` needs, and what `make test` needs on top.
RUN_PKGS  := pkg-config gcc pocketsphinx pocketsphinx-en-us libpocketsphinx-dev libsphinxbase-dev espeak-ng
TEST_PKGS := $(RUN_PKGS) postgresql chromium python3-onnx python3-numpy flite prometheus
# What `make eval-voice` needs: the second synthesizer of the voice corpus.
EVAL_PKGS := $(RUN_PKGS) flite

# A throwaway PostgreSQL cluster for the tests, on loopback only.
PG_BIN    ?= $(lastword $(sort $(wildcard /usr/lib/postgresql/*/bin)))
PG_ROOT   ?= /tmp/koel-test-pg
PG_PORT   ?= 55432
PG_URL    := postgres://koel@127.0.0.1:$(PG_PORT)/koel_test?sslmode=disable
IS_ROOT   := $(shell [ "$$(id -u)" = 0 ] && echo yes)
AS_PG     := $(if $(IS_ROOT),runuser -u postgres --,)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# deps-% installs the packages of one list when any is missing.
define install_pkgs
	missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$(IS_ROOT)" = yes ]; then \
	    echo "installing:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing"; \
	    echo "run:  sudo apt-get update && sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi
endef

.PHONY: deps-run deps-test
deps-run: ## install the packages koel needs to run
	@$(call install_pkgs,$(RUN_PKGS))
deps-test: ## install the packages the tests need
	@$(call install_pkgs,$(TEST_PKGS))

.PHONY: build
build: deps-run ## build bin/koel, with sherpa-onnx's two shared libraries beside it (rpath $ORIGIN)
	CGO_LDFLAGS="$${CGO_LDFLAGS:-} -Wl,-rpath,\$$ORIGIN" $(GO) build -o $(BIN) ./cmd/koel
	@lib="$$($(GO) list -m -f '{{.Dir}}' github.com/k2-fsa/sherpa-onnx-go-linux)/lib/$$(uname -m)-unknown-linux-gnu"; \
	  if [ -d "$$lib" ]; then install -m 0644 "$$lib/libsherpa-onnx-c-api.so" "$$lib/libonnxruntime.so" $(dir $(BIN)); fi

.PHONY: run
run: build ## build and start koel with the demo bot (http://127.0.0.1:8080/sim/)
	KOEL_DEV=$${KOEL_DEV:-1} ./$(BIN) serve

.PHONY: pg-start pg-stop
pg-start: deps-test ## start the tests' PostgreSQL on 127.0.0.1:$(PG_PORT)
	@if [ -z "$(PG_BIN)" ]; then echo "PostgreSQL server binaries not found under /usr/lib/postgresql"; exit 1; fi
	@if $(PG_BIN)/pg_isready -q -h 127.0.0.1 -p $(PG_PORT); then exit 0; fi; \
	install -d -m 0700 $(if $(IS_ROOT),-o postgres -g postgres,) $(PG_ROOT); \
	pg_init() { $(AS_PG) $(PG_BIN)/initdb -D $(PG_ROOT)/data -U koel -A trust --no-sync >/dev/null; }; \
	pg_run() { $(AS_PG) $(PG_BIN)/pg_ctl -D $(PG_ROOT)/data -l $(PG_ROOT)/log -w -t 60 start \
	  -o "-p $(PG_PORT) -c listen_addresses=127.0.0.1 -k $(PG_ROOT) -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null; }; \
	[ -f $(PG_ROOT)/data/PG_VERSION ] || pg_init; \
	if ! pg_run; then \
	  echo "the test PostgreSQL in $(PG_ROOT) does not start; recreating it (it holds only test data)"; \
	  rm -rf $(PG_ROOT)/data && pg_init && pg_run; \
	fi; \
	$(PG_BIN)/psql -q -h 127.0.0.1 -p $(PG_PORT) -U koel -d postgres -tc "SELECT 1 FROM pg_database WHERE datname='koel_test'" | grep -q 1 || \
	  $(PG_BIN)/createdb -h 127.0.0.1 -p $(PG_PORT) -U koel koel_test; \
	echo "PostgreSQL for tests: $(PG_URL)"
pg-stop: ## stop the tests' PostgreSQL
	@if [ -f $(PG_ROOT)/data/postmaster.pid ]; then $(AS_PG) $(PG_BIN)/pg_ctl -D $(PG_ROOT)/data -w stop >/dev/null; fi

.PHONY: test
test: deps-test pg-start ## install what is missing and run every test (race detector on)
	$(GO) vet $(PKGS)
	KOEL_TEST_DATABASE_URL='$(PG_URL)' $(GO) test $(GOFLAGS_TEST) -timeout $(TEST_TIMEOUT) -count=1 $(PKGS)

.PHONY: test-short
test-short: ## unit tests only, no race detector
	$(GO) test -short -count=1 $(PKGS)

.PHONY: eval-voice
eval-voice: build ## measure spoken-question understanding on the voice corpus (SPLIT=test|tune, EVAL_FLAGS=-json)
	@$(call install_pkgs,$(EVAL_PKGS))
	./$(BIN) eval voice -split $${SPLIT:-test} $(EVAL_FLAGS)

.PHONY: bench
bench: deps-test pg-start ## run the benchmarks (figures go to README's performance section)
	KOEL_TEST_DATABASE_URL='$(PG_URL)' $(GO) test -run '^$$' -bench . -benchmem -benchtime=$${BENCHTIME:-2s} -timeout 60m $(PKGS) | tee bench.out

.PHONY: soak
soak: deps-test ## 15 min of mixed voice and text load from koel load under -race (SOAK=15m); not part of make test
	KOEL_SOAK=$${SOAK:-15m} $(GO) test -race -count=1 -run '^TestSoak$$' -v -timeout 60m ./cmd/koel

FUZZTIME ?= 30s
.PHONY: fuzz
fuzz: ## run every fuzz target for $(FUZZTIME)
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: fmt vet tidy-check clean
fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')
vet: ## go vet
	$(GO) vet $(PKGS)
tidy-check: ## fail when go.mod/go.sum are not tidy
	$(GO) mod tidy && git diff --exit-code -- go.mod go.sum
clean: ## remove build outputs
	rm -rf bin bench.out
