# Everything runs with only Go installed; `make test` uses real Redis and MySQL when
# they answer (see README), embedded stand-ins otherwise.
GO        ?= go
BIN       := bin/monitor
PKGS      := ./...

.PHONY: run build test vet fmt bench fuzz clean

run: build
	./$(BIN) all

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) .

test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 20m $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin data

# Load test against the real Redis and MariaDB (see bench/run.sh); writes BENCHMARKS.md.
bench:
	./bench/run.sh
