# The operator image: a locked release build, then only the static binary on an empty
# base, running as a non-root user.
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev ca-certificates
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN cargo build --locked --release -p okta-rbac-operator --bin okta-rbac-operator \
    && cp target/release/okta-rbac-operator /okta-rbac-operator

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /okta-rbac-operator /okta-rbac-operator
USER 65532:65532
ENTRYPOINT ["/okta-rbac-operator"]
