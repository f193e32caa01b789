//go:build tools

// Package tools pins the binaries this module builds.
package tools

import _ "github.com/google/go-containerregistry/cmd/crane"
