// The module of the .dockerignore oracle (scripts/test-tools.mjs builds it; the `go` line is replaced
// by the toolchain test/tools/versions.json pins). The patternmatcher version here and the one
// versions.json pins for the tool must be the same: change both together.
module col-test-tools/ignore-oracle

go 1.22

require github.com/moby/patternmatcher v0.6.1
