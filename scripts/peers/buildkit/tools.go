//go:build tools

// Package tools pins BuildKit's daemon and client as dependencies of this module, so that
// `go install github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl` run in this
// directory builds them at the version go.mod requires.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
