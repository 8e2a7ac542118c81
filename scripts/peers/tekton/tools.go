//go:build tools

// Package tools pins Tekton Pipelines' six programs (the controller, its webhook, and the entrypoint, nop,
// workingdirinit and sidecarlogresults images a TaskRun's Pod uses) as dependencies of this module. The Go
// module proxy serves github.com/tektoncd/pipeline@v1.3.0 but refuses its version list (403), which
// `go install pkg@version` needs, so they are built from this module: `go install <cmd packages>` here.
package tools

import (
	_ "github.com/tektoncd/pipeline/cmd/controller"
	_ "github.com/tektoncd/pipeline/cmd/entrypoint"
	_ "github.com/tektoncd/pipeline/cmd/nop"
	_ "github.com/tektoncd/pipeline/cmd/sidecarlogresults"
	_ "github.com/tektoncd/pipeline/cmd/webhook"
	_ "github.com/tektoncd/pipeline/cmd/workingdirinit"
)
