# A static bulkrestore on a distroless base; the database lives on a volume.
#   docker build --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse HEAD) -t bulkrestore .
#   docker run -p 8080:8080 -v bulkrestore-data:/data bulkrestore
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
# modernc SQLite is pure Go: no cgo, a fully static binary.
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
    -o /out/bulkrestore . && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bulkrestore /usr/local/bin/bulkrestore
# The volume's mount point must belong to the nonroot user to be writable.
COPY --from=build --chown=nonroot:nonroot /out/data /data
VOLUME /data
EXPOSE 8080
ENV BULKRESTORE_ADDR=:8080 BULKRESTORE_DB=/data/bulkrestore.db
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/bulkrestore"]
CMD ["serve"]
