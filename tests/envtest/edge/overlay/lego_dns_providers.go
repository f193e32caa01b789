// Package overlay holds files that `cargo xtask envtest` lays over a dependency's file when
// it builds traefik (`go build -overlay`); see xtask/src/envtest.rs. Nothing imports it.
//
// lego_dns_providers.go replaces github.com/go-acme/lego/v5/providers/dns's generated
// zz_gen_dns_providers.go: that factory imports every ACME DNS-01 provider, and the SDKs of
// about fifteen of them (cloud vendors' DNS clients) are not served by the Go module proxy
// this project reaches, so traefik would not build. The test proxy never asks for an ACME
// certificate; without the providers, a DNS-01 challenge fails with lego's own message.
package dns

import (
	"fmt"

	"github.com/go-acme/lego/v5/challenge"
)

// NewDNSChallengeProviderByName knows no DNS provider in this build.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	return nil, fmt.Errorf("unrecognized DNS provider: %s", name)
}
