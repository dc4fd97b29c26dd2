// Package jsonlines is the protocol of the oracles: one JSON value a line on stdin, one JSON
// answer a line on stdout, in the same order, so that one process answers a whole test corpus.
package jsonlines

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// Serve answers each line of stdin, decoded as a T, with answer's A as one line of JSON (HTML
// characters left as they are). A line that is not a T ends the program with status 2, a failed
// read or write with status 1; either names the tool on stderr.
func Serve[T, A any](tool string, answer func(T) A) {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	encoder := json.NewEncoder(out)
	encoder.SetEscapeHTML(false)
	fail := func(status int, format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s: %s\n", tool, fmt.Sprintf(format, args...))
		os.Exit(status)
	}
	for line := 1; in.Scan(); line++ {
		var request T
		if err := json.Unmarshal(in.Bytes(), &request); err != nil {
			fail(2, "stdin line %d: %v", line, err)
		}
		if err := encoder.Encode(answer(request)); err != nil {
			fail(1, "%v", err)
		}
	}
	if err := in.Err(); err != nil {
		fail(1, "reading stdin: %v", err)
	}
	if err := out.Flush(); err != nil {
		fail(1, "writing stdout: %v", err)
	}
}
