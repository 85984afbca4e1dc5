# azdurable build, test and lint entry points. `make test` is what CI runs.

GO ?= go
# staticcheck 2026.2.2; the module proxy serves only the semver tags.
STATICCHECK_VERSION ?= v0.8.2
AZURITE_DIR := test/azurite
AZURITE_BIN := $(AZURITE_DIR)/node_modules/.bin/azurite
COVERPROFILE ?= coverage.out

.PHONY: all test vet lint fmt-check staticcheck cover demo bench azurite azurite-deps

all: lint test

# Install the pinned Azurite once (the Go test helper can also do this itself,
# under a file lock, but doing it here keeps the test timings clean).
azurite-deps:
	@if [ ! -x $(AZURITE_BIN) ]; then \
		echo "npm ci --prefix $(AZURITE_DIR)"; \
		npm ci --prefix $(AZURITE_DIR) --no-audit --no-fund; \
	fi

vet:
	$(GO) vet ./...

# The Go tests start (and stop) Azurite themselves through test/azurite.
# The race detector runs on the packages with concurrent code of their own;
# the process-level tests (test/..., cmd/..., dashboard) drive binaries and a
# browser, where -race would only slow the build.
RACE_PKGS := ./core/... ./azprovider/... ./leases/... ./partition/... ./metrics/... ./ops/... ./samples/... ./internal/...
test: azurite-deps vet
	$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)
	$(GO) test -count=1 -timeout 20m $$($(GO) list ./... | grep -v -e '/core' -e '/azprovider' -e '/leases' -e '/partition' -e '/metrics' -e '/ops' -e '/samples' -e '/internal')

fmt-check:
	@out="$$(find . -name '*.go' -not -path '*/node_modules/*' -not -path './.git/*' -print0 | xargs -0 -r gofmt -l)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

lint: fmt-check vet staticcheck

cover: azurite-deps
	$(GO) test -count=1 -covermode=atomic -coverprofile=$(COVERPROFILE) ./...
	@$(GO) tool cover -func=$(COVERPROFILE) | tail -n 1

demo: azurite-deps
	$(GO) run ./cmd/demo

# The benchmark harness (docs/performance.md). BENCH_ARGS picks the workload,
# e.g. make bench BENCH_ARGS="-provider azurite -workload hello -n 1000".
BENCH_ARGS ?= -workload hello -n 1000
bench: azurite-deps
	$(GO) run ./cmd/bench $(BENCH_ARGS)

# Azurite in the foreground on the default ports 10000/10001/10002 (so
# UseDevelopmentStorage=true works), data in test/azurite/.data. Ctrl-C stops it.
azurite: azurite-deps
	$(AZURITE_DIR)/start.sh --foreground
