package refresher

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestSampleEvents feeds every sample event in events/ to the handler, as a local
// or remote invoke would, and checks what each one does.
func TestSampleEvents(t *testing.T) {
	want := map[string]struct {
		providers []string // the providers in the result
		status    Status
		idle      bool // ended after the run record: nothing is due
	}{
		"scheduled.json":      {nil, "", true},
		"refresh.json":        {[]string{"booking", "cardlytics", "checkissuing", "ecard", "opencard"}, StatusSkipped, false},
		"rotate-one.json":     {[]string{"ecard"}, StatusRefreshed, false},
		"rotate-all.json":     {[]string{"booking", "cardlytics", "checkissuing", "ecard", "opencard"}, StatusRefreshed, false},
		"secret-changed.json": {[]string{"ecard"}, StatusRefreshed, false},
		"secret-rotated.json": {[]string{"opencard"}, StatusRefreshed, false},
	}
	files, err := filepath.Glob(filepath.Join("..", "..", "events", "*.json"))
	if err != nil || len(files) != len(want) {
		t.Fatalf("events/ holds %d files, want %d: %v", len(files), len(want), err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("got no expectation for %s, want one for every sample event", name)
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			world := newWorld(t)
			h := &Handler{Refresher: world.refresher()}
			// Publish fresh tokens first, so a refresh has nothing to do.
			if _, err := h.Handle(context.Background(), json.RawMessage(`{"action":"rotate","providers":["*"]}`)); err != nil {
				t.Fatal(err)
			}
			res, err := h.Handle(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			if res.Idle != w.idle || res.NextDue == "" {
				t.Fatalf("idle %v, next due %q; want idle %v and a next due time", res.Idle, res.NextDue, w.idle)
			}
			var got []string
			for _, o := range res.Results {
				got = append(got, o.Provider)
				if o.Status != w.status {
					t.Errorf("%s: %s, want %s", o.Provider, o.Status, w.status)
				}
			}
			slices.Sort(got)
			if len(got) != len(w.providers) {
				t.Fatalf("providers %v, want %v", got, w.providers)
			}
			for i := range got {
				if got[i] != w.providers[i] {
					t.Fatalf("providers %v, want %v", got, w.providers)
				}
			}
		})
	}
}
