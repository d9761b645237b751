package refresher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// TestPlanDecidesFromMetadata: a run decides from the parameters' metadata and
// decrypts no token whose metadata stands for it, in both modes, whether the
// token is due or not; a token whose metadata an older version wrote is read and
// decided on as before, due or not; a token known from its metadata is logged by
// its own fingerprint and never published; when the metadata cannot be read,
// every token is read.
func TestPlanDecidesFromMetadata(t *testing.T) {
	setup := func(t *testing.T) (*world, *Refresher, *bytes.Buffer) {
		w := newWorld(t)
		if _, err := w.refresher().Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}}); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		r := w.refresher()
		r.Log = slog.New(slog.NewJSONHandler(&logs, nil))
		w.store.reads = 0
		return w, r, &logs
	}
	refresh := Request{Action: ActionRefresh}

	t.Run("nothing due: nothing decrypted", func(t *testing.T) {
		for _, fanOut := range []bool{false, true} {
			w, r, logs := setup(t)
			if fanOut {
				r.Queue = &fakeQueue{}
			}
			res, err := r.Run(context.Background(), refresh)
			if err != nil {
				t.Fatal(err)
			}
			if c := res.Counts(); c[StatusSkipped] != 5 || w.store.reads != 0 {
				t.Fatalf("fan-out %v: got %v and %d tokens decrypted, want 5 skipped and none decrypted", fanOut, c, w.store.reads)
			}
			// Logged by the fingerprint of the token published, as a read token is.
			logged := 0
			for line := range strings.Lines(logs.String()) {
				var l struct {
					Provider         string `json:"provider"`
					TokenFingerprint string `json:"token_fingerprint"`
				}
				if json.Unmarshal([]byte(line), &l) != nil || l.Provider == "" {
					continue
				}
				logged++
				if want := tokens.Fingerprint(w.store.tokens[param(l.Provider)].AccessToken); l.TokenFingerprint != want {
					t.Errorf("got %s logged with fingerprint %q, want %q", l.Provider, l.TokenFingerprint, want)
				}
			}
			if logged != 5 {
				t.Errorf("got %d provider log lines, want 5", logged)
			}
		}
	})

	t.Run("due: refreshed without decrypting", func(t *testing.T) {
		w, r, _ := setup(t)
		cur := w.store.tokens[param("booking")]
		cur.IssuedAt, cur.ExpiresAt = cur.IssuedAt.Add(-50*time.Minute), cur.ExpiresAt.Add(-50*time.Minute)
		w.store.tokens[param("booking")] = cur
		res, err := r.Run(context.Background(), refresh)
		if err != nil {
			t.Fatal(err)
		}
		if s := statuses(res); s["booking"] != StatusRefreshed || s["ecard"] != StatusSkipped || w.store.reads != 0 {
			t.Fatalf("got %v and %d tokens decrypted, want booking refreshed, the rest skipped, none decrypted", s, w.store.reads)
		}
		for name, tok := range w.store.tokens {
			if strings.HasPrefix(tok.AccessToken, describedToken) {
				t.Fatalf("got %s published as a stand-in, want a token", name)
			}
		}
	})

	t.Run("metadata of an older version: the token is read", func(t *testing.T) {
		w, r, _ := setup(t)
		w.store.undescribed[param("ecard")] = true
		w.store.undescribed[param("opencard")] = true
		expired := w.store.tokens[param("opencard")]
		expired.ExpiresAt = time.Now().Add(-time.Minute)
		w.store.tokens[param("opencard")] = expired
		res, err := r.Run(context.Background(), refresh)
		if err != nil {
			t.Fatal(err)
		}
		if s := statuses(res); s["ecard"] != StatusSkipped || s["opencard"] != StatusRefreshed || s["booking"] != StatusSkipped || w.store.reads != 2 {
			t.Fatalf("got %v and %d tokens decrypted, want ecard skipped, opencard refreshed, 2 decrypted", s, w.store.reads)
		}
	})

	t.Run("metadata unreadable: every token is read", func(t *testing.T) {
		w, r, _ := setup(t)
		w.store.metadataErr = errors.New("AccessDeniedException")
		res, err := r.Run(context.Background(), refresh)
		if err != nil {
			t.Fatal(err)
		}
		if c := res.Counts(); c[StatusSkipped] != 5 || w.store.reads != 5 {
			t.Fatalf("got %v and %d tokens decrypted, want 5 skipped and 5 decrypted", c, w.store.reads)
		}
	})
}
