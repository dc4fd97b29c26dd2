// ignore-oracle: reads .dockerignore files with github.com/moby/patternmatcher (its ignorefile
// reader and its matcher, what the Docker CLI and BuildKit use for build contexts), so that
// test/unit/dockerignore-oracle.test.ts can compare tasks/lib/docker/ignore.ts with the real one.
// A test tool only; never shipped.
//
// stdin: one JSON object per line, {"dockerignore": "<file text>", "paths": ["a/b", …]}.
// stdout: one JSON object per input line, in the same order:
//
//	{"patterns": […], "ignored": [true, false, …]}   what ignorefile.ReadAll read, and each path's answer
//	{"patterns": […], "error": "…"}                  a pattern patternmatcher refuses
//
// patternmatcher compiles a pattern when it first matches with it, so a bad pattern that is never
// reached goes unnoticed there; the oracle compiles every pattern first (as our matcher does), and
// reports the first bad one.
package main

import (
	"fmt"
	"strings"

	"col-test-tools/oracles/jsonlines"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

type request struct {
	Dockerignore string   `json:"dockerignore"`
	Paths        []string `json:"paths"`
}

type answer struct {
	Patterns []string `json:"patterns"`
	Ignored  []bool   `json:"ignored,omitempty"`
	Error    string   `json:"error,omitempty"`
}

func evaluate(r request) answer {
	patterns, err := ignorefile.ReadAll(strings.NewReader(r.Dockerignore))
	if err != nil {
		return answer{Error: err.Error()}
	}
	a := answer{Patterns: patterns}
	if a.Patterns == nil {
		a.Patterns = []string{}
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	for _, p := range pm.Patterns() {
		// A matcher in which this pattern is reached, compiled on its first match. An exclusion
		// follows an inclusion that matches "x", and keeps its "!": New trims a pattern, and an
		// exclusion's may begin with a space ("! *x" is " *x").
		alone := []string{p.String()}
		if p.Exclusion() {
			alone = []string{"x", "!" + p.String()}
		}
		one, err := patternmatcher.New(alone)
		if err == nil {
			_, err = one.MatchesOrParentMatches("x")
		}
		if err != nil {
			a.Error = fmt.Sprintf("pattern %q: %v", p.String(), err)
			return a
		}
	}
	for _, path := range r.Paths {
		ignored, err := pm.MatchesOrParentMatches(path)
		if err != nil {
			a.Error = err.Error()
			a.Ignored = nil
			return a
		}
		a.Ignored = append(a.Ignored, ignored)
	}
	return a
}

func main() {
	jsonlines.Serve("ignore-oracle", evaluate)
}
