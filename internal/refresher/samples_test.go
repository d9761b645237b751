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
	}{
		"scheduled.json":      {[]string{"booking", "cardlytics", "checkissuing", "ecard", "opencard"}, StatusSkipped},
		"refresh.json":        {[]string{"booking", "cardlytics", "checkissuing", "ecard", "opencard"}, StatusSkipped},
		"rotate-one.json":     {[]string{"ecard"}, StatusRefreshed},
		"rotate-all.json":     {[]string{"booking", "cardlytics", "checkissuing", "ecard", "opencard"}, StatusRefreshed},
		"secret-changed.json": {[]string{"ecard"}, StatusRefreshed},
		"secret-rotated.json": {[]string{"opencard"}, StatusRefreshed},
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
				t.Fatalf("no expectation for %s", name)
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
