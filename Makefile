.PHONY: run test build
run:
	go run ./cmd/abacus serve
test:
	./scripts/test
build:
	go build -o bin/abacus ./cmd/abacus
