# The operator's image: the static binary cargo built and a CA bundle, nothing else.
# The same file is built by the release workflow (docker buildx, linux/amd64 and
# linux/arm64) and by `make image` here (buildah, offline); both first put into dist/
#   okta-rbac-operator-linux-<arch>   cargo build --release with +crt-static
#   ca-certificates.crt               the build machine's CA bundle
FROM scratch
ARG TARGETARCH
COPY dist/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY dist/okta-rbac-operator-linux-${TARGETARCH} /okta-rbac-operator
USER 65532:65532
ENTRYPOINT ["/okta-rbac-operator"]
CMD ["run"]
