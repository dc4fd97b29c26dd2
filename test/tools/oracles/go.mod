// The module of the differential tests' oracles (scripts/test-tools.mjs builds each command of it
// as a test tool; the `go` line is replaced by the toolchain test/tools/versions.json pins):
// ignore-oracle (moby/patternmatcher) and reference-oracle (distribution/reference), which share
// the stdin loop of jsonlines. Each version here and the one versions.json pins for its tool must
// be the same: change both together.
module col-test-tools/oracles

go 1.22

require github.com/moby/patternmatcher v0.6.1

require github.com/distribution/reference v0.6.0

require github.com/opencontainers/go-digest v1.0.0 // indirect
