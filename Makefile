.PHONY: run test build
# make run                         abacus serve
# make run ARGS="--http-addr 127.0.0.1:9090 --data-dir /tmp/abacus"
# make run CMD="apikeys list" ARGS="--tenant Acme"
CMD ?= serve
ARGS ?=
run:
	go run ./cmd/abacus $(CMD) $(ARGS)
test:
	./scripts/test
build:
	go build -o bin/abacus ./cmd/abacus
