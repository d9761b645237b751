package tokens

import (
	"context"
	"errors"
	"io"
	"net/http"

	"golang.org/x/oauth2"
)

// drainLimit caps how much of a 401 body is read before a retry. Reading it to the
// end lets the connection be reused; past this size, closing is cheaper than reading.
const drainLimit = 64 << 10

// Transport is an http.RoundTripper that authorizes each request with the token
// from Source, like oauth2.Transport, and in addition recovers from a token the
// partner rejected early (for example because issuing the successor revoked it).
//
// On a 401 response it reads the parameter again. When the parameter then holds
// a different token, it sends the request once more, with that token. When it
// holds the same token, the partner refused the latest one: with WithRotation the
// Source asks the refresher for a new token and waits, boundedly, for it to be
// published, and the request is sent once more with it; otherwise, or when none
// comes in time, the 401 is returned, because retrying with the same token would
// only earn another. All requests refused with one token share one re-read (and
// one rotation and wait), and for the Source's quiet period after a re-read found
// the refused token still published, further 401s with it read nothing.
//
// A request with a body is retried only if the body can be produced again
// (req.GetBody is set, as http.NewRequest does for in-memory bodies); otherwise the
// 401 is returned at once and the next request reads the parameter again.
type Transport struct {
	// Source supplies the tokens. It must not be nil.
	Source *Source
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper. It never modifies req: the
// Authorization header is set on a clone.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	// The RoundTripper contract says RoundTrip closes the request body, also on
	// errors; the base transport does so once it has the request.
	bodyHandedOver := false
	defer func() {
		if !bodyHandedOver && req.Body != nil {
			_ = req.Body.Close()
		}
	}()

	if t.Source == nil {
		return nil, errors.New("tokens: Transport.Source is nil")
	}
	ctx := req.Context()
	tok, err := t.Source.TokenContext(ctx)
	if err != nil {
		return nil, err
	}

	first := req.Clone(ctx)
	tok.SetAuthHeader(first)
	bodyHandedOver = true
	res, err := t.base().RoundTrip(first)
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		return res, err
	}

	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody && req.GetBody == nil {
		// No retry is possible, so no reason to wait: the next request reads.
		t.Source.invalidateToken(tok.AccessToken)
		return res, nil
	}
	fresh, err := t.Source.successor(ctx, tok.AccessToken)
	if err != nil || fresh.AccessToken == tok.AccessToken {
		// Nothing better to send: the caller gets the partner's own answer.
		return res, nil
	}
	retry := req.Clone(ctx)
	if hasBody {
		body, err := req.GetBody()
		if err != nil {
			return res, nil
		}
		retry.Body = body
	}
	fresh.SetAuthHeader(retry)

	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, drainLimit))
	_ = res.Body.Close()
	return t.base().RoundTrip(retry)
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// NewClient returns an HTTP client that authorizes every request with the token
// from src, through a Transport, as oauth2.NewClient does for an
// oauth2.TokenSource. Like oauth2.NewClient it builds on the *http.Client that ctx
// carries under oauth2.HTTPClient, if any (its Transport, CheckRedirect, Jar and
// Timeout), and otherwise on http.DefaultTransport. ctx is used only to find that
// client; the returned client is used with each request's own context.
func NewClient(ctx context.Context, src *Source) *http.Client {
	base, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if base == nil {
		base = &http.Client{}
	}
	return &http.Client{
		Transport:     &Transport{Source: src, Base: base.Transport},
		CheckRedirect: base.CheckRedirect,
		Jar:           base.Jar,
		Timeout:       base.Timeout,
	}
}
