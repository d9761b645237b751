package refresher

import (
	"context"
	"errors"
	"fmt"

	"github.com/token-refresher/token-refresher/internal/discovery"
	"github.com/token-refresher/token-refresher/internal/registry"
)

// Discoverer reads an authorization server's metadata by its issuer, kept for the
// warm environment; *discovery.Cache is one.
type Discoverer interface {
	Get(ctx context.Context, issuer string) (*discovery.Metadata, error)
	// Forget drops issuer's document, so that the next Get reads it again.
	Forget(issuer string)
}

// errNoDiscovery fails a provider configured by issuer in a Refresher without Discovery.
var errNoDiscovery = errors.New("this function has no discovery client")

// resolveEndpoint sets p's token URL, and returns the metadata read, from its issuer's metadata: the mTLS alias for
// the mutual TLS methods, else token_endpoint. It refuses an auth_method the server
// does not list, naming what it lists. A provider configured by token_url is left as
// it is.
func resolveEndpoint(ctx context.Context, d Discoverer, p *registry.Provider) (*discovery.Metadata, error) {
	if p.Issuer == "" {
		return nil, nil
	}
	if d == nil {
		return nil, fmt.Errorf("issuer %s: %w", p.Issuer, errNoDiscovery)
	}
	md, err := d.Get(ctx, p.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", p.Issuer, err)
	}
	if err := md.Supports(string(p.AuthMethod)); err != nil {
		return md, fmt.Errorf("issuer %s: %w", p.Issuer, err)
	}
	u := *md.TokenURL(p.AuthMethod.MutualTLS()) // a copy: the document is shared
	p.TokenURL = &u
	return md, nil
}
