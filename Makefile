# ioswarm — the commands a developer and CI run.
GO      ?= go
NPM     ?= npm
NODEDIR := integration/node

.PHONY: test deps vet fuzz bench demo

## test: install the Node.js packages the tests drive, then run every test with -race.
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

## deps: the official socket.io-client (and friends) from npm, pinned by package-lock.json.
deps:
	cd $(NODEDIR) && $(NPM) ci --no-audit --no-fund --loglevel=error

vet:
	$(GO) vet ./...

## fuzz: run each fuzzer for FUZZTIME (default 60s).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./parser/
	$(GO) test -run='^$$' -fuzz='^FuzzDecoderAdd$$' -fuzztime=$(FUZZTIME) ./parser/
	$(GO) test -run='^$$' -fuzz='^FuzzSplitArray$$' -fuzztime=$(FUZZTIME) ./parser/
	$(GO) test -run='^$$' -fuzz='^FuzzRawRoundTrip$$' -fuzztime=$(FUZZTIME) ./parser/
	$(GO) test -run='^$$' -fuzz='^FuzzScanParity$$' -fuzztime=$(FUZZTIME) ./parser/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodePayload$$' -fuzztime=$(FUZZTIME) ./engineio/
	$(GO) test -run='^$$' -fuzz='^FuzzToValidUTF8$$' -fuzztime=$(FUZZTIME) ./engineio/
	$(GO) test -run='^$$' -fuzz='^FuzzTranscode$$' -fuzztime=$(FUZZTIME) ./adapter/redis/
	$(GO) test -run='^$$' -fuzz='^FuzzTranscodeParity$$' -fuzztime=$(FUZZTIME) ./adapter/redis/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeMessage$$' -fuzztime=$(FUZZTIME) ./adapter/redis/

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

## demo: run the cluster demo, one node on the in-memory adapter: http://localhost:3000.
demo:
	$(GO) run ./clusterdemo
