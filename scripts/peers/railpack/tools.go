//go:build tools

// Package tools pins railpack's CLI as a dependency of this module. The Go module proxy serves
// github.com/railwayapp/railpack@v0.15.0 but refuses its version list (403), and `go install pkg@version`
// needs that list (to check for deprecation), so the CLI is built from this module instead:
// `go install github.com/railwayapp/railpack/cmd/cli` run in this directory.
package tools

import _ "github.com/railwayapp/railpack/cmd/cli"
