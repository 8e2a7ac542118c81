//go:build tools

// Package tools pins kube-apiserver and kubectl as dependencies of this module, so that
// `go install k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl` run here builds them at the
// version go.mod requires (kubectl at the same version as the API server: no version skew).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
