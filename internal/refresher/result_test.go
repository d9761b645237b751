package refresher

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestResultBounded: a result of 100,000 providers stays under the bound Lambda's
// 6 MB response quota needs, with every provider counted, every outcome that is not
// skipped kept while it fits, and what was left out said; a small one is unchanged.
func TestResultBounded(t *testing.T) {
	outcomes := func(n int, failed func(i int) bool) []Outcome {
		out := make([]Outcome, n)
		for i := range out {
			out[i] = Outcome{Provider: fmt.Sprintf("provider-%06d", i), Status: StatusSkipped, Reason: "valid until 2026-12-03T10:00:00Z (refreshed 15m0s before expiry)", ExpiresAt: "2026-12-03T10:00:00Z"}
			if failed(i) {
				out[i] = Outcome{Provider: out[i].Provider, Status: StatusFailed, Error: "token endpoint answered 401: invalid_client"}
			}
		}
		return out
	}
	tests := []struct {
		name        string
		res         Result
		wantKept    int
		wantOmitted int
		wantFailed  int
	}{
		{"small, unchanged", Result{Results: outcomes(5, func(i int) bool { return i == 2 })}, 5, 0, 1},
		{"100,000, ten failed", Result{Results: outcomes(100_000, func(i int) bool { return i%10_000 == 0 })}, 10, 99_990, 10},
		{"100,000, all failed", Result{Results: outcomes(100_000, func(int) bool { return true })}, -1, -1, 100_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.res.bounded(maxResultBytes)
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > maxResultBytes || maxResultBytes > 6_291_456 {
				t.Fatalf("got %d bytes of JSON, want at most %d (Lambda's quota is 6,291,456)", len(b), maxResultBytes)
			}
			if tt.wantKept >= 0 && len(got.Results) != tt.wantKept {
				t.Errorf("got %d outcomes, want %d", len(got.Results), tt.wantKept)
			}
			if got.Omitted+len(got.Results) != len(tt.res.Results) || tt.wantOmitted >= 0 && got.Omitted != tt.wantOmitted {
				t.Errorf("got %d omitted and %d kept of %d, want %d omitted", got.Omitted, len(got.Results), len(tt.res.Results), tt.wantOmitted)
			}
			if tt.wantOmitted == 0 {
				if got.Totals != nil || got.Note != "" {
					t.Errorf("got totals %v, note %q on a result that fits, want neither", got.Totals, got.Note)
				}
				return
			}
			if got.Totals[StatusFailed] != tt.wantFailed || got.Note == "" {
				t.Errorf("got totals %v, note %q, want %d failed and a note", got.Totals, got.Note, tt.wantFailed)
			}
			for _, o := range got.Results {
				if o.Status == StatusSkipped {
					t.Fatalf("got a skipped outcome kept while others were left out: %+v, want none", o)
				}
			}
		})
	}
}
