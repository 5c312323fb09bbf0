# kubelab: two commands on a fresh machine: `make run` and `make test`.
GO      ?= go
BIN     := bin/kubelab
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
ADDR    ?= 127.0.0.1:8080
DATA    ?= ./data

.PHONY: all run build web deps test e2e bench lint fmt vet clean browser-deps

all: build

## deps: npm packages for the web bundle (Go modules are fetched by go itself)
deps: web/node_modules/.package-lock.json

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

## web: bundle xterm.js, the page script and styles into web/dist
web: deps
	cd web && npm run build

## build: the single kubelab binary, with the web bundle embedded
build: web
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/kubelab

## run: serve the built-in course on http://$(ADDR) (SQLite under $(DATA))
run: build
	./$(BIN) serve --addr $(ADDR) --data $(DATA)

## test: fast tests, no Docker needed (installs Chromium for the browser test when root)
test: web browser-deps
	$(GO) vet ./...
	$(GO) test ./...
	$(GO) run ./cmd/kubelab lint

browser-deps:
	@./scripts/ensure-chromium

## e2e: the slow suite against a real Docker engine, one package at a time
## (each creates clusters; together they starved each other); fails loudly without one
e2e: web
	@docker info >/dev/null 2>&1 || { echo "make e2e: no Docker engine answers (run .ci/docker-up as root)"; exit 1; }
	$(GO) test -tags e2e -p 1 -count=1 -timeout 60m ./...

## bench: figures beside their baselines, as one Markdown report (also docs/performance.md)
bench: build
	$(GO) run ./cmd/kubelab-bench -kubelab $(BIN) -out docs/performance.md
	$(GO) test -run '^$$' -bench . -benchmem ./server/...

## lint: gofmt, go vet and the lesson linter
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run ./cmd/kubelab lint

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin web/dist/*.js web/dist/*.css
