// The module of the reference oracle (scripts/test-tools.mjs builds it; the `go` line is replaced
// by the toolchain test/tools/versions.json pins). The distribution/reference version here and
// the one versions.json pins for the tool must be the same: change both together.
module col-test-tools/reference-oracle

go 1.22

require github.com/distribution/reference v0.6.0

require github.com/opencontainers/go-digest v1.0.0 // indirect
