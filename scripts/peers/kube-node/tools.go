//go:build tools

// Package tools pins the node-side Kubernetes binaries (kubelet, kube-proxy) and the two control-plane
// controllers (kube-scheduler, kube-controller-manager) as dependencies of this module. The module requires the
// same k8s.io/kubernetes version, with the same staging-module pins, as scripts/peers/kube-apiserver, so the
// cluster's binaries have no version skew and the Go build cache shares the apiserver's packages.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
