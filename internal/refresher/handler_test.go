package refresher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// TestHandlerNeverLeaks runs full invocations, including failures, with known
// client secrets and captures everything they print: logs, metrics, the result
// and the error. Neither a client secret, in any form a provider can echo it
// (oauthtest.SecretForms), nor an access token may appear in any. Every error path
// of the token client is driven by providers that quote the request back: in
// their refusal, in token_type, in expires_in, in a malformed status line, and in
// a status line of 4 MiB.
func TestHandlerNeverLeaks(t *testing.T) {
	w := newWorld(t)
	// Logs and metrics go to separate buffers: each writer serialises its own
	// writes, as both do on the one os.Stdout in Lambda.
	var out, metrics bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := w.refresher()
	r.Log = log
	r.Metrics = &Metrics{Out: &metrics, Namespace: "TokenRefresher", PerProvider: true}
	h := &Handler{Refresher: r, Log: log}

	record := func(res Result, err error) {
		b, _ := json.Marshal(res)
		out.Write(b)
		if err != nil {
			out.WriteString(err.Error())
		}
	}
	record(h.Handle(context.Background(), json.RawMessage(`{"action":"refresh"}`)))
	// A provider that echoes what it was sent, and one that refuses.
	w.srv.SetFault("booking", oauthtest.Fault{Kind: oauthtest.WrongCredentials})
	w.srv.SetFault("checkissuing", oauthtest.Fault{Kind: oauthtest.ErrorWith200})
	record(h.Handle(context.Background(), json.RawMessage(`{"action":"rotate","providers":["*"]}`)))
	record(h.Handle(context.Background(), json.RawMessage(`{"action":"nonsense"}`)))
	for _, kind := range []oauthtest.FaultKind{oauthtest.EchoError, oauthtest.EchoTokenType, oauthtest.EchoExpiresIn,
		oauthtest.EchoStatusLine, oauthtest.HugeStatusLine} {
		for _, d := range oauthtest.Dialects() {
			w.srv.SetFault(string(d), oauthtest.Fault{Kind: kind})
		}
		before := out.Len()
		record(h.Handle(context.Background(), json.RawMessage(`{"action":"rotate","providers":["*"]}`)))
		if n := strings.Count(out.String()[before:], `"msg":"token refresh failed"`); n != 5 {
			t.Fatalf("%s: %d failed outcomes logged, want 5", kind, n)
		}
	}

	text := out.String() + metrics.String()
	for id, s := range w.secrets.current {
		for _, form := range oauthtest.SecretForms(s.ClientID, s.ClientSecret) {
			if strings.Contains(text, form) {
				t.Errorf("got output containing the client secret of %s as %q, want none of its forms", id, form)
			}
		}
	}
	if len(text) > 1<<20 {
		t.Errorf("got %d bytes of output, want at most %d: text from outside is not bounded", len(text), 1<<20)
	}
	issued := 0
	for _, d := range oauthtest.Dialects() {
		for _, tok := range w.srv.Stats(string(d)).Issued {
			issued++
			if strings.Contains(text, tok) {
				t.Errorf("got output containing a token of %s, want only its fingerprint", d)
			}
			if !strings.Contains(text, tokens.Fingerprint(tok)) {
				t.Errorf("got no fingerprint of the %s token in the logs, want one", d)
			}
		}
	}
	if issued < 8 {
		t.Fatalf("got %d tokens issued, want at least 8: the test checked too little", issued)
	}
}

func TestHandlerResult(t *testing.T) {
	w := newWorld(t)
	h := &Handler{Refresher: w.refresher()}
	w.srv.SetFault("cardlytics", oauthtest.Fault{Kind: oauthtest.WrongCredentials})
	res, err := h.Handle(context.Background(), json.RawMessage(`{"detail-type":"Scheduled Event","source":"aws.events"}`))
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("got err = %v, want errors.Is(err, ErrFailed)", err)
	}
	b, _ := json.Marshal(res)
	var got struct {
		Results []map[string]string `json:"results"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Results) != 5 {
		t.Fatalf("got %s, want 5 results", b)
	}
	for _, o := range got.Results {
		switch o["status"] {
		case "refreshed":
			if o["expires_at"] == "" || o["error"] != "" {
				t.Errorf("got %v, want an expires_at and no error", o)
			}
		case "failed":
			if o["provider"] != "cardlytics" || !strings.Contains(o["error"], "token endpoint answered 401") {
				t.Errorf("got %v, want cardlytics failed with \"token endpoint answered 401\"", o)
			}
		default:
			t.Errorf("got %v, want status refreshed or failed", o)
		}
	}

	// A refused event changes nothing and says why.
	writes := w.store.writes
	res, err = h.Handle(context.Background(), json.RawMessage(`{"action":"rotate"}`))
	if !errors.Is(err, ErrUnsupportedEvent) || len(res.Results) != 0 || w.store.writes != writes {
		t.Fatalf("got err %v, %+v, want errors.Is(err, ErrUnsupportedEvent), no result, no write", err, res)
	}
}

func TestMetricsLines(t *testing.T) {
	var out bytes.Buffer
	w := newWorld(t)
	r := w.refresher()
	r.Metrics = &Metrics{Out: &out, Namespace: "NS", PerProvider: true}
	if _, err := r.Run(context.Background(), Request{Action: ActionRefresh}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("got %d EMF lines, want 5", len(lines))
	}
	for _, l := range lines {
		var m struct {
			AWS struct {
				Timestamp         int64
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name, Unit string }
				}
			} `json:"_aws"`
			Provider        string
			Refreshed       int
			Failed          int
			SecondsToExpiry int64
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		cw := m.AWS.CloudWatchMetrics
		if m.AWS.Timestamp == 0 || len(cw) != 1 || cw[0].Namespace != "NS" || len(cw[0].Metrics) != 5 {
			t.Fatalf("got EMF %s, want a timestamp and one metric set of 5 in namespace NS", l)
		}
		if len(cw[0].Dimensions) != 2 || cw[0].Dimensions[0][0] != "Provider" || len(cw[0].Dimensions[1]) != 0 {
			t.Fatalf("got dimensions in %s, want [[Provider] []]", l)
		}
		if m.Provider == "" || m.Refreshed != 1 || m.Failed != 0 || m.SecondsToExpiry < 3000 {
			t.Fatalf("got values in %s, want a provider, Refreshed 1, Failed 0, SecondsToExpiry at least 3000", l)
		}
	}
}

// TestMetricsReportEveryPublishedToken: every run reports SecondsToExpiry for every
// provider that has a published token, skipped and failed ones included, which is
// what lets the expiry alarm treat missing data as a refresher that stopped running.
func TestMetricsReportEveryPublishedToken(t *testing.T) {
	w := newWorld(t)
	if _, err := w.refresher().Run(context.Background(), Request{Action: ActionRefresh}); err != nil {
		t.Fatal(err)
	}
	published := w.store.tokens[param("cardlytics")]
	w.srv.SetFault("cardlytics", oauthtest.Fault{Kind: oauthtest.WrongCredentials})
	for _, req := range []Request{{Action: ActionRefresh}, {Action: ActionRotate, Providers: []string{"cardlytics"}}} {
		var out bytes.Buffer
		r := w.refresher()
		r.Metrics = &Metrics{Out: &out, Namespace: "NS"}
		res, _ := r.Run(context.Background(), req)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != len(res.Results) {
			t.Fatalf("%s: got %d EMF lines, want %d, one per provider", req.Action, len(lines), len(res.Results))
		}
		for _, l := range lines {
			var m struct {
				Provider        string
				SecondsToExpiry *int64
				Failed          *int
			}
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			if m.SecondsToExpiry == nil || *m.SecondsToExpiry < 60 {
				t.Errorf("%s: %s: got %s, want SecondsToExpiry of at least 60", req.Action, m.Provider, l)
			}
			if failed := m.Failed != nil && *m.Failed == 1; failed != (req.Action == ActionRotate) {
				t.Errorf("%s: got %s, want Failed 1 only on the rotation", req.Action, l)
			}
		}
	}
	if w.store.tokens[param("cardlytics")] != published {
		t.Fatalf("got published %+v, want %+v: the failed rotation replaced the token", w.store.tokens[param("cardlytics")], published)
	}
}

// TestHandlerUnconfigured: a deployment built without a registry fails every
// invocation as unconfigured, saying so, with no provider in the result.
func TestHandlerUnconfigured(t *testing.T) {
	var out bytes.Buffer
	h := &Handler{Unconfigured: "built without a provider registry", Log: slog.New(slog.NewJSONHandler(&out, nil))}
	res, err := h.Handle(context.Background(), json.RawMessage(`{"action":"refresh"}`))
	if !errors.Is(err, ErrUnconfigured) || !strings.Contains(err.Error(), "without a provider registry") || len(res.Results) != 0 {
		t.Fatalf("got err %v, %+v, want errors.Is(err, ErrUnconfigured) naming the missing registry, no result", err, res)
	}
	if !strings.Contains(out.String(), "unconfigured deployment") {
		t.Fatalf("got log %s, want \"unconfigured deployment\"", out.String())
	}
}
