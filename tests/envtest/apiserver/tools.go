//go:build tools

// Package tools pins the binaries this module builds: the control plane's apiserver and the
// controller-manager that runs its garbage collector and namespace controller.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
