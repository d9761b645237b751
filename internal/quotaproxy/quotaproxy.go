// Package quotaproxy is a loopback HTTP proxy in front of an AWS endpoint
// (LocalStack) that enforces SSM's PutParameter quota the way SSM does: a write
// beyond the quota is answered HTTP 400 ThrottlingException, with the JSON error
// body and x-amzn-ErrorType header of SSM's JSON protocol, and everything else is
// forwarded unchanged. The benchmark points the SDK's endpoint at it to count the
// throttles a write budget avoids. It is for tests and benchmarks.
package quotaproxy

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// target is the X-Amz-Target of SSM's PutParameter in the AWS JSON 1.1 protocol.
const target = "AmazonSSM.PutParameter"

// throttled is SSM's answer to a call beyond its quota.
const throttled = `{"__type":"ThrottlingException","message":"Rate exceeded"}`

// Proxy forwards to an upstream endpoint, throttling PutParameter beyond its rate.
type Proxy struct {
	srv      *http.Server
	ln       net.Listener
	lim      *rate.Limiter
	now      func() time.Time
	allowed  atomic.Int64
	refused  atomic.Int64
	serveErr chan error
}

// Options are a Proxy's settings beyond its upstream and rate.
type Options struct {
	// Burst is how many writes may come at once after a quiet second: the size of
	// the quota's token bucket. SSM does not publish it; zero means one second's
	// worth of the rate, rounded up.
	Burst int
	// Now is the clock; time.Now when nil. Tests set it.
	Now func() time.Time
}

// Start listens on a free port of 127.0.0.1 and forwards to upstream (such as
// http://127.0.0.1:4566), allowing perSecond PutParameter calls a second.
func Start(upstream string, perSecond float64, opt Options) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("quotaproxy: upstream %q is not an absolute URL", upstream)
	}
	if perSecond <= 0 {
		return nil, fmt.Errorf("quotaproxy: rate %g is not positive", perSecond)
	}
	burst := opt.Burst
	if burst <= 0 {
		burst = int(math.Ceil(perSecond))
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("quotaproxy: %w", err)
	}
	p := &Proxy{ln: ln, now: now, serveErr: make(chan error, 1)}
	p.lim = rate.NewLimiter(rate.Limit(perSecond), burst)
	forward := httputil.NewSingleHostReverseProxy(u)
	p.srv = &http.Server{Handler: p.handler(forward), ReadHeaderTimeout: 10 * time.Second}
	go func() { p.serveErr <- p.srv.Serve(ln) }()
	return p, nil
}

func (p *Proxy) handler(forward http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == target {
			if !p.lim.AllowN(p.now(), 1) {
				p.refused.Add(1)
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.Header().Set("X-Amzn-ErrorType", "ThrottlingException")
				w.Header().Set("X-Amzn-RequestId", fmt.Sprintf("quotaproxy-%d", p.refused.Load()))
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(throttled))
				return
			}
			p.allowed.Add(1)
		}
		forward.ServeHTTP(w, r)
	})
}

// URL is the proxy's endpoint, for the SDK's BaseEndpoint or AWS_ENDPOINT_URL.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Throttled is how many PutParameter calls the proxy refused.
func (p *Proxy) Throttled() int64 { return p.refused.Load() }

// Allowed is how many PutParameter calls the proxy forwarded.
func (p *Proxy) Allowed() int64 { return p.allowed.Load() }

// Close stops the proxy.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	if serr := <-p.serveErr; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return errors.Join(err, serr)
	}
	return err
}
