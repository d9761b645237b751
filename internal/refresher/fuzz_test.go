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
				t.Fatalf("refused without ErrUnsupportedEvent: %v", err)
			}
			if len(err.Error()) > 2*maxText {
				t.Fatalf("refusal of %d bytes", len(err.Error()))
			}
			return
		}
		switch req.Action {
		case ActionRefresh:
			if req.Providers != nil {
				t.Fatalf("a refresh naming providers: %+v", req)
			}
		case ActionRotate:
			if req.Trigger == "manual" && (len(req.Providers) == 0 || slices.Contains(req.Providers, "")) {
				t.Fatalf("a manual rotation without providers: %+v", req)
			}
		case actionWork:
			for _, j := range req.Jobs {
				if j.MessageID == "" || j.err == nil && (j.Provider == "" || j.PlannedAt.IsZero()) {
					t.Fatalf("a job without its message or provider: %+v", j)
				}
			}
		default:
			t.Fatalf("unknown action %q", req.Action)
		}
	})
}
