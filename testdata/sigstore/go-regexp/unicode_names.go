package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"unicode"
)

func canonicalName(name string) string {
	var b []byte
	first := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '-' || c == ' ':
			continue
		case first:
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			first = false
		default:
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
		}
		b = append(b, c)
	}
	return string(b)
}

func main() {
	seen := map[string]bool{}
	var raw []string
	for n := range unicode.Categories {
		raw = append(raw, n)
	}
	for n := range unicode.Scripts {
		raw = append(raw, n)
	}
	for n := range unicode.CategoryAliases {
		raw = append(raw, n)
	}
	raw = append(raw, "Any", "Assigned", "ASCII", "LC")
	var accepted []string
	for _, n := range raw {
		c := canonicalName(n)
		if seen[c] {
			continue
		}
		seen[c] = true
		if _, err := regexp.Compile(`\p{` + c + `}`); err == nil {
			accepted = append(accepted, c)
		}
	}
	sort.Strings(accepted)
	if len(os.Args) > 1 {
		// Test cases: each raw name, and each accepted canonical name.
		type tc struct {
			Pattern string   `json:"pattern"`
			Inputs  []string `json:"inputs"`
		}
		inputs := []string{"a", "A", "1", "α", "中", "é", " ", "_", "-", "\u0301", "١", "ǅ", "\u00ad", "€", "\U0001F600", "\u2028", "\U000E0001", "ᚠ", "\u0378"}
		var cases []tc
		sort.Strings(raw)
		for _, n := range raw {
			cases = append(cases, tc{`^\p{` + n + `}$`, inputs})
		}
		for _, c := range accepted {
			cases = append(cases, tc{`^\P{` + c + `}$`, inputs})
		}
		json.NewEncoder(os.Stdout).Encode(cases)
		return
	}
	for _, c := range accepted {
		fmt.Println(c)
	}
}
