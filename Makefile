# ioswarm — the commands a developer and CI run.
GO      ?= go
NPM     ?= npm
NODEDIR := integration/node
# The Go modules: the library (.) and the cross-process tests (integration/, a module of its
# own so that the library's go.mod lists only what the library needs).
MODULES := . integration

# staticcheck, pinned, installed from the Go module proxy into bin/ (not in git) on first
# use; again when the pin or the Go toolchain changes (it must understand the Go it checks).
STATICCHECK_VERSION := v0.8.2
STATICCHECK_DIR     := $(CURDIR)/bin/staticcheck-$(STATICCHECK_VERSION)-$(shell $(GO) env GOVERSION)
STATICCHECK         := $(STATICCHECK_DIR)/staticcheck

.PHONY: test deps vet staticcheck tidy fuzz bench demo

## test: install the Node.js packages the tests drive, then, in both modules, go vet,
## staticcheck and every test with -race (the tests of both modules run even when the
## first module's fail; make test fails if either does).
test: deps vet staticcheck
	@rc=0; for m in $(MODULES); do \
	  echo "== go test -race -count=1 ./... in $$m"; \
	  (cd $$m && $(GO) test -race -count=1 -timeout 15m ./...) || { rc=1; echo "== FAIL: go test in $$m"; }; \
	done; exit $$rc

## deps: the official socket.io-client (and friends) from npm, pinned by package-lock.json.
deps:
	cd $(NODEDIR) && $(NPM) ci --no-audit --no-fund --loglevel=error

## vet: go vet ./... in both modules.
vet:
	@set -e; for m in $(MODULES); do \
	  echo "== go vet ./... in $$m"; \
	  (cd $$m && $(GO) vet ./...); \
	done

## staticcheck: staticcheck ./... in both modules.
staticcheck: $(STATICCHECK)
	@set -e; for m in $(MODULES); do \
	  echo "== staticcheck ./... in $$m"; \
	  (cd $$m && $(STATICCHECK) ./...); \
	done

$(STATICCHECK):
	GOBIN=$(STATICCHECK_DIR) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## tidy: go mod tidy in both modules.
tidy:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done

## fuzz: run each fuzzer for FUZZTIME (default 60s).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./parser/
	$(GO) test -run='^$$' -fuzz='^FuzzDecoderAdd$$' -fuzztime=$(FUZZTIME) ./parser/
	$(GO) test -run='^$$' -fuzz='^FuzzSplitArray$$' -fuzztime=$(FUZZTIME) ./parser/
	$(GO) test -run='^$$' -fuzz='^FuzzRawRoundTrip$$' -fuzztime=$(FUZZTIME) ./parser/
	$(GO) test -run='^$$' -fuzz='^FuzzScanParity$$' -fuzztime=$(FUZZTIME) ./internal/jsonscan/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodePayload$$' -fuzztime=$(FUZZTIME) ./engineio/
	$(GO) test -run='^$$' -fuzz='^FuzzToValidUTF8$$' -fuzztime=$(FUZZTIME) ./engineio/
	$(GO) test -run='^$$' -fuzz='^FuzzTranscode$$' -fuzztime=$(FUZZTIME) ./adapter/internal/cluster/
	$(GO) test -run='^$$' -fuzz='^FuzzTranscodeParity$$' -fuzztime=$(FUZZTIME) ./adapter/internal/cluster/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeMessage$$' -fuzztime=$(FUZZTIME) ./adapter/redis/
	$(GO) test -run='^$$' -fuzz='^FuzzShardedJSON$$' -fuzztime=$(FUZZTIME) ./adapter/redis/
	$(GO) test -run='^$$' -fuzz='^FuzzIncoming$$' -fuzztime=$(FUZZTIME) ./client/
	$(GO) test -run='^$$' -fuzz='^FuzzAppendBatch$$' -fuzztime=$(FUZZTIME) ./client/internal/engine/

## bench: the library's benchmarks (the integration module has none).
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

## demo: run the cluster demo, one node on the in-memory adapter: http://localhost:3000.
demo:
	$(GO) run ./clusterdemo
