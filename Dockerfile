# syntax=docker/dockerfile:1
# Abacus: one static binary in an image without a shell, running as a
# non-root user. Build: docker build -t abacus .   Run: docker run -p 8080:8080 abacus
# Every role runs from this image (--roles); deploy/ has the compose file,
# Kubernetes manifests and systemd units (docs/operations.md).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO off: a static binary (SQLite is modernc, pure Go), so the final image
# needs no libc.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X github.com/abacusbilling/abacus/internal/cli.Version=${VERSION}" \
      -o /out/abacus ./cmd/abacus \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/abacus /abacus
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV ABACUS_DATA_DIR=/data ABACUS_HTTP_ADDR=0.0.0.0:8080 ABACUS_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["/abacus"]
CMD ["serve", "--roles", "all"]
