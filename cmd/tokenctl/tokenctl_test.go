package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/state"
	"github.com/token-refresher/token-refresher/internal/store"
)

func TestRows(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	info := func(p string, left time.Duration) store.Info {
		return store.Info{Provider: p, IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(left), RefreshAt: now.Add(left - 15*time.Minute), Fingerprint: "abcd1234"}
	}
	infos := map[string]store.Info{
		"/t/healthy":  info("healthy", time.Hour),
		"/t/expired":  info("expired", -time.Minute),
		"/t/retrying": info("retrying", 10*time.Minute),
		"/t/previous": func() store.Info { i := info("previous", time.Hour); i.PreviousSecret = true; return i }(),
		"/t/revived":  info("revived", time.Hour),
	}
	health := map[string]state.Health{
		"retrying":  {Provider: "retrying", State: state.Degraded, Reason: "the last refresh failed; the published token is still valid", ConsecutiveFailures: 2, LastError: "503"},
		"expired":   {Provider: "expired", State: state.Failing, ConsecutiveFailures: 9, LastError: "401"},
		"revived":   {Provider: "revived", State: state.Failing, ConsecutiveFailures: 1},
		"untokened": {Provider: "untokened", State: state.Failing, ConsecutiveFailures: 3},
	}
	want := map[string]state.Condition{
		"healthy": state.Healthy, "expired": state.Failing, "retrying": state.Degraded, "previous": state.Degraded,
		"revived": state.Degraded, "untokened": state.Failing,
	}
	got := rows(now, nil, infos, health)
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(got), len(want), got)
	}
	for _, r := range got {
		if r.State != want[r.Provider] {
			t.Errorf("%s: %s (%s), want %s", r.Provider, r.State, r.Reason, want[r.Provider])
		}
	}
	healthy := got[slicesIndex(got, "healthy")]
	if healthy.SecondsLeft != 3600 || healthy.AgeSeconds != 3600 || healthy.Fingerprint != "abcd1234" || healthy.NextRefresh.IsZero() {
		t.Errorf("healthy row %+v: want 3600 s left, age 3600 s, fingerprint abcd1234, a next refresh", healthy)
	}

	// With a registry, its providers are listed, one without a token as failing.
	dir := t.TempDir()
	file := filepath.Join(dir, "providers.yaml")
	os.WriteFile(file, []byte("providers:\n  - {name: healthy, token_url: 'https://a.example/t', secret_id: a}\n  - {name: fresh, token_url: 'https://a.example/t', secret_id: b}\n"), 0o600)
	reg, err := registry.LoadFile(file, registry.Options{ParameterPrefix: "/t"})
	if err != nil {
		t.Fatal(err)
	}
	got = rows(now, reg, infos, health)
	if len(got) != 2 || got[0].Provider != "healthy" || got[1].Provider != "fresh" || got[1].State != state.Failing || got[1].Reason != "no token is published" {
		t.Fatalf("with a registry: got %+v; want healthy, then fresh failing with %q", got, "no token is published")
	}
}

// TestRowsRotationWaiting: a provider a rotation kept in the run record still waits
// for (its token issued before the rotation) is shown with the rotation's time, a
// healthy one with it as its reason; one rotated since, or not named, is not.
func TestRowsRotationWaiting(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	table := []Row{
		{Provider: "old", State: state.Healthy, IssuedAt: at.Add(-time.Hour)},
		{Provider: "rotated", State: state.Healthy, IssuedAt: at.Add(time.Minute)},
		{Provider: "other", State: state.Healthy, IssuedAt: at.Add(-time.Hour)},
		{Provider: "failing", State: state.Failing, Reason: "no token is published"},
	}
	got := waiting(table, []state.Rotation{{At: at, Providers: []string{"old", "rotated", "failing"}}})
	tests := []struct {
		provider   string
		wantAt     time.Time
		wantReason string
	}{
		{"old", at, "rotation requested at 2026-11-23T10:00:00Z, waiting for the write budget"},
		{"rotated", time.Time{}, ""},
		{"other", time.Time{}, ""},
		{"failing", at, "no token is published"},
	}
	for _, tt := range tests {
		r := got[slicesIndex(got, tt.provider)]
		if !r.RotationRequestedAt.Equal(tt.wantAt) || r.Reason != tt.wantReason || r.State != table[slicesIndex(table, tt.provider)].State {
			t.Errorf("%s: got rotation requested at %s, reason %q, state %s; want %s, %q, unchanged", tt.provider, r.RotationRequestedAt, r.Reason, r.State, tt.wantAt, tt.wantReason)
		}
	}
}

func slicesIndex(rs []Row, name string) int {
	for i, r := range rs {
		if r.Provider == name {
			return i
		}
	}
	return -1
}

func TestRejectedRows(t *testing.T) {
	broken := "providers:\n  - {name: ok, token_url: 'https://ok.example/token', secret_id: s/ok}\n" +
		"  - {name: bad, token_url: 'http://bad.example/token', secret_id: s/bad}\n" +
		"  - {token_url: 'https://x.example/token', secret_id: s/x}\n"
	_, rejected, err := registry.LoadEach(strings.NewReader(broken), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := rejectedRows(rejected)
	for i, want := range []struct{ provider, field string }{{"bad", "token_url"}, {"providers[2]", "name"}} {
		if i >= len(got) {
			t.Fatalf("got %d rows, want 2", len(got))
		}
		r := got[i]
		if r.Provider != want.provider || r.State != state.Failing || !strings.Contains(r.Reason, want.field) || !strings.Contains(r.Reason, "line ") {
			t.Errorf("got %+v, want %s failing with its %s problem and line", r, want.provider, want.field)
		}
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second: "30s", 47 * time.Minute: "47m", 23*time.Hour + 12*time.Minute: "23h12m",
		364 * 24 * time.Hour: "364d", -5 * time.Minute: "-5m",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestCheckOffline: check reports every problem of a broken registry at once,
// naming the file, the provider, the field and the line, and exits 1; a sound one
// exits 0.
func TestCheckOffline(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	os.WriteFile(broken, []byte(`providers:
  - name: ecard
    token_url: http://platform.example.com/token
    secret_id: token-refresher/ecard
    refresh_before: 15x
  - name: Bad
    secret_id: x
`), 0o600)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"check", broken}, &out, &errOut); code != exitProblem {
		t.Fatalf("got exit %d, want %d: %s %s", code, exitProblem, out.String(), errOut.String())
	}
	for _, want := range []string{broken + ": 4 problems", `provider "ecard": token_url:`, `provider "ecard": refresh_before: invalid duration "15x"`, "(line 5)",
		`provider "Bad": name:`, `provider "Bad": token_url: required (or issuer, to discover the token endpoint) (line 6)`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"check", filepath.Join("..", "..", "functions", "refresher", "providers.example.yaml")}, &out, &errOut); code != exitOK ||
		!strings.Contains(out.String(), "5 providers, no problems") || !strings.Contains(out.String(), "checkissuing") {
		t.Fatalf("got exit %d, want %d and \"5 providers, no problems\" naming checkissuing: %s", code, exitOK, out.String())
	}
	if code := run(context.Background(), []string{"nonsense"}, &out, &errOut); code != exitUsage {
		t.Fatalf("unknown command: got exit %d, want %d", code, exitUsage)
	}
}

// TestTablesSendNoControlCharacters: text from outside (claims, health records,
// names) reaches the terminal escaped and bounded, so it can neither set the
// window title, clear the screen nor forge a row.
func TestTablesSendNoControlCharacters(t *testing.T) {
	const osc = "\x1b]0;owned\x07"
	const clear = "\x1b[2J\x1b[H"
	forged := "\nforged\tok\t-\r"
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var probes bytes.Buffer
	printProbes(&probes, refresher.Result{Results: []refresher.Outcome{
		{Provider: "p" + clear, Status: refresher.StatusChecked, Probe: &refresher.Probe{TokenType: "Bearer" + osc,
			Scope: "read" + forged, Fingerprint: "abcd",
			JWT:        &refresher.JWT{Issuer: osc + "https://a.example" + clear, Audience: []string{strings.Repeat("a", 3000), "b\u202eevil"}},
			AuthMethod: "tls_client_auth", TokenEndpoint: "https://a.example/token" + forged, AuthMethodsSupported: []string{"tls_client_auth" + osc, strings.Repeat("m", 3000)},
			Certificate: &refresher.Certificate{Subject: "CN=c" + forged + clear, NotAfter: "2026-12-01T00:00:00Z"}}, Note: "expires" + forged},
		{Provider: "q", Status: refresher.StatusFailed, Error: "refused" + forged + osc},
	}})
	for _, want := range []string{"tls_client_auth", `CN=c\nforged\tok\t-\r`, "until 2026-12-01T00:00:00Z"} {
		if !strings.Contains(probes.String(), want) {
			t.Errorf("check -probe: got %q, want %q in it", probes.String(), want)
		}
	}
	var status bytes.Buffer
	printTable(&status, now, []Row{{Provider: "r" + osc, State: state.Failing, Reason: "no token" + clear,
		LastError: "503" + forged + "\xff", ConsecutiveFailures: 2}})
	for name, out := range map[string]string{"check -probe": probes.String(), "status": status.String()} {
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if want := map[string]int{"check -probe": 3, "status": 2}[name]; len(lines) != want {
			t.Errorf("%s: got %d lines, want %d:\n%s", name, len(lines), want, out)
		}
		for _, line := range lines {
			if i := strings.IndexFunc(line, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\u202e' }); i >= 0 {
				t.Errorf("%s: got %q at byte %d of line %q, want every control character escaped", name, line[i], i, line)
			}
			if len(line) > 1000 {
				t.Errorf("%s: got a line of %d bytes, want the 3,000-byte aud bounded", name, len(line))
			}
		}
		if !strings.Contains(out, `\x1b`) {
			t.Errorf("%s: got %q, want the escape shown as \\x1b", name, out)
		}
	}
}

func TestSafe(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"plain text, ünïcode", 100, "plain text, ünïcode"},
		{"\x1b[2J", 100, `\x1b[2J`},
		{"a\tb\nc", 100, `a\tb\nc`},
		{`back\slash`, 100, `back\\slash`},
		{"bad\xffbyte", 100, `bad\xffbyte`},
		{"rtl\u202eoverride", 100, `rtl\u202eoverride`},
		{strings.Repeat("x", 3000), 10, strings.Repeat("x", 10) + "…"},
		{strings.Repeat("\x1b", 10), 8, `\x1b\x1b…`},
	} {
		if got := safe(tt.in, tt.n); got != tt.want {
			t.Errorf("safe(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
