package refresher

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzParseEvent feeds arbitrary events to the decoder. It must not panic; an event
// it refuses is refused with ErrUnsupportedEvent and a bounded message, whatever the
// event holds; an event it accepts is a refresh, or a rotation that names providers
// (none for a failed or unrelated secret change). Seed inputs are in
// testdata/fuzz/FuzzParseEvent, one per file of events/.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"action":"rotate","providers":["ecard"]}`))
	f.Add([]byte(`{"detail-type":"Scheduled Event","source":"aws.events","time":"2026-11-22T10:00:00Z"}`))
	f.Add([]byte(`{"Records":[{"messageId":"m1","eventSource":"aws:sqs","body":"{\"provider\":\"ecard\",\"planned_at\":\"2026-11-22T10:00:00Z\"}"}]}`))
	users := func(id string) []string {
		if strings.HasPrefix(id, "token-refresher/") {
			return []string{"ecard"}
		}
		return nil
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := parseEvent(raw, users)
		if err != nil {
			if !errors.Is(err, ErrUnsupportedEvent) {
				t.Fatalf("got err %v, want errors.Is(err, ErrUnsupportedEvent)", err)
			}
			if len(err.Error()) > 2*maxText {
				t.Fatalf("got a refusal of %d bytes, want at most %d", len(err.Error()), 2*maxText)
			}
			return
		}
		switch req.Action {
		case ActionRefresh:
			if req.Providers != nil {
				t.Fatalf("got a refresh naming providers: %+v, want none named", req)
			}
		case ActionRotate:
			if req.Trigger == "manual" && (len(req.Providers) == 0 || slices.Contains(req.Providers, "")) {
				t.Fatalf("got a manual rotation %+v, want non-empty provider names", req)
			}
		case actionWork:
			for _, j := range req.Jobs {
				if j.MessageID == "" || j.err == nil && (j.Provider == "" || j.PlannedAt.IsZero()) {
					t.Fatalf("got job %+v, want a message id, and a provider and planned_at unless refused", j)
				}
			}
		default:
			t.Fatalf("got action %q, want refresh, rotate or work", req.Action)
		}
	})
}
