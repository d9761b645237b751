package oauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// Check is a call to a partner's API that proves a new token works before it is
// published, as Secrets Manager's rotation tests a new secret before it becomes
// current.
type Check struct {
	// URL is called with the token: https, or http only to a loopback host, as for
	// token requests, since it carries the token.
	URL *url.URL
	// Method is the HTTP method; GET when empty.
	Method string
	// Expect lists the statuses that mean the token works; [200] when empty.
	Expect []int
}

// errVerification means a Check's call did not answer as expected.
var errVerification = errors.New("verification failed")

// Verify calls chk's URL with tok as a partner's client would ("Authorization:
// <type> <token>") and returns nil when the answer's status is expected. It follows
// no redirect and reads at most 64 KiB of the answer, which it does not quote; its
// error goes through the same redaction as the token requests', with the token as
// the value to remove, so it never holds the token. It is not retried: a check
// that fails keeps the published token until the next run.
func (c *Client) Verify(ctx context.Context, chk Check, tok *tokens.Token) error {
	return sanitize(c.verify(ctx, chk, tok), Credentials{ClientSecret: tok.AccessToken})
}

func (c *Client) verify(ctx context.Context, chk Check, tok *tokens.Token) error {
	if err := CheckTokenURL(chk.URL); err != nil {
		return fmt.Errorf("%w: verify URL: %v", errInsecureURL, err)
	}
	method := chk.Method
	if method == "" {
		method = http.MethodGet
	}
	expect := chk.Expect
	if len(expect) == 0 {
		expect = []int{http.StatusOK}
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(c.RequestTimeout, defaultRequestTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, chk.URL.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: %v", errVerification, err)
	}
	req.Header.Set("Authorization", tok.TokenType+" "+tok.AccessToken)
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w: %v", errVerification, errUnreachable, scrubURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if !slices.Contains(expect, resp.StatusCode) {
		want := make([]string, len(expect))
		for i, s := range expect {
			want[i] = strconv.Itoa(s)
		}
		return fmt.Errorf("%w: %s %s answered %d, want %s", errVerification, method, chk.URL.Path, resp.StatusCode, strings.Join(want, " or "))
	}
	return nil
}
