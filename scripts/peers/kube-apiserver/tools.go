//go:build tools

// Package tools pins kube-apiserver as a dependency of this module, so that
// `go install k8s.io/kubernetes/cmd/kube-apiserver` run here builds it at the version go.mod requires.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
