//go:build tools

// Package tools pins what this module provides: the traefik binary, and (imported so that
// the requirement stays direct) the Gateway API module whose standard CRDs the harness
// installs, at the version the test control plane serves.
package tools

import (
	_ "github.com/traefik/traefik/v3/cmd/traefik"
	_ "sigs.k8s.io/gateway-api/apis/v1"
)
