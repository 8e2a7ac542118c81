// Prints, for each pattern, whether Go's regexp compiles it and MatchString on each input, as JSON lines.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
)

type result struct {
	Pattern string   `json:"pattern"`
	Valid   bool     `json:"valid"`
	Match   []string `json:"match,omitempty"`
	NoMatch []string `json:"nomatch,omitempty"`
}

func main() {
	var cases []struct {
		Pattern string   `json:"pattern"`
		Inputs  []string `json:"inputs"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	var out []result
	for _, c := range cases {
		re, err := regexp.Compile(c.Pattern)
		r := result{Pattern: c.Pattern, Valid: err == nil}
		if err == nil {
			for _, in := range c.Inputs {
				if re.MatchString(in) {
					r.Match = append(r.Match, in)
				} else {
					r.NoMatch = append(r.NoMatch, in)
				}
			}
		}
		out = append(out, r)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
