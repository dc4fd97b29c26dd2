// reference-oracle: parses image references with github.com/distribution/reference, the library
// Docker (CLI and engine), Compose and containerd use, so that test/unit/reference-oracle.test.ts
// can compare our TypeScript grammar with the real one. A test tool only; never shipped.
//
// stdin: one reference per line, each a JSON string (so that spaces, tabs and line breaks inside
// a reference survive). stdout: one JSON object per input line, in the same order:
//
//	{"input":…,"domain":…,"path":…,"tag":…,"digest":…,"familiar":…,"familiarRoundTrips":…}
//	{"input":…,"error":"…"}
package main

import (
	// go-digest knows an algorithm only when its hash is linked in: Docker and containerd import
	// both, so sha256, sha384 and sha512 digests validate here as they do there.
	_ "crypto/sha256"
	_ "crypto/sha512"

	"col-test-tools/oracles/jsonlines"
	"github.com/distribution/reference"
)

// parsed is an accepted reference. Domain is always present: distribution can accept a name with
// an empty domain (a first component that is not a valid host but is a valid path component).
type parsed struct {
	Input  string `json:"input"`
	Domain string `json:"domain"`
	Path   string `json:"path"`
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest,omitempty"`
	// Docker's short form ('busybox:1'), and whether parsing it again gives the same reference.
	Familiar           string `json:"familiar"`
	FamiliarRoundTrips bool   `json:"familiarRoundTrips"`
}

type refused struct {
	Input string `json:"input"`
	Error string `json:"error"`
}

func parse(input string) any {
	named, err := reference.ParseNormalizedNamed(input)
	if err != nil {
		return refused{Input: input, Error: err.Error()}
	}
	r := parsed{Input: input, Domain: reference.Domain(named), Path: reference.Path(named), Familiar: reference.FamiliarString(named)}
	if tagged, ok := named.(reference.Tagged); ok {
		r.Tag = tagged.Tag()
	}
	if digested, ok := named.(reference.Digested); ok {
		r.Digest = digested.Digest().String()
	}
	again, err := reference.ParseNormalizedNamed(r.Familiar)
	r.FamiliarRoundTrips = err == nil && again.String() == named.String()
	return r
}

func main() {
	jsonlines.Serve("reference-oracle", parse)
}
