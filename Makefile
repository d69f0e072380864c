# Everything runs with only Go installed; `make test` uses real Redis and MySQL when
# they answer (see README), embedded stand-ins otherwise.
GO        ?= go
BIN       := bin/monitor
PKGS      := ./...

.PHONY: run build test vet fmt bench bench-cluster fuzz fuzz-run clean chaos

run: build
	./$(BIN) all

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) .

test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(PKGS)
	$(MAKE) fuzz-run FUZZ_FOR=$(FUZZTIME_TEST)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin data

# Fuzz targets, one `go test -fuzz` run each (Go fuzzes one target per invocation).
# `make test` gives each FUZZTIME_TEST; `make fuzz` gives each FUZZTIME. Crashers land in
# the package's testdata/fuzz and then run as regression cases in every `go test`.
FUZZ_TARGETS  := ./model:FuzzParseReport ./task:FuzzDecodeReport ./task:FuzzFormatPayload ./api:FuzzDeviceQuery ./api:FuzzReportQuery ./api:FuzzCursor
FUZZTIME_TEST ?= 10s
FUZZTIME      ?= 2m

fuzz:
	$(MAKE) fuzz-run FUZZ_FOR=$(FUZZTIME)

fuzz-run:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz $$pkg $$fn for $(FUZZ_FOR)"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZ_FOR) $$pkg; \
	done

# The whole fault-injection suite at full size (chaos/; make test runs part of it, smaller).
# It starts its own redis-server and mariadbd, so it needs both installed. With
# CHAOS_REPORT=file each scenario appends its row of RELIABILITY.md's table to file.
CHAOS_REPORT ?=
chaos:
	$(GO) vet -tags chaos ./chaos/
	MONITOR_TEST_REAL=1 MONITOR_CHAOS_REPORT=$(CHAOS_REPORT) $(GO) test -tags chaos -count=1 -timeout 90m -v ./chaos/

# Load test against the real Redis and MariaDB (see bench/run.sh); writes BENCHMARKS.md.
bench:
	./bench/run.sh

# The same burst on one Redis and on a local 3-master Redis Cluster, side by side (bench/cluster.sh).
bench-cluster:
	./bench/cluster.sh
