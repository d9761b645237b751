package refresher

// Status is a provider's outcome in a run.
type Status string

// Statuses.
const (
	StatusRefreshed Status = "refreshed"
	StatusSkipped   Status = "skipped"
	StatusFailed    Status = "failed"
)

// Result is what an invocation returns: one outcome per provider considered, in
// registry order. It never holds a secret or a token.
type Result struct {
	Results []Outcome `json:"results"`
	// NextDue is when the next token becomes due, RFC 3339 UTC, when the run knows
	// it: every provider has a valid token and none failed.
	NextDue string `json:"next_due,omitempty"`
	// Idle says the run read the run record only: nothing was due.
	Idle bool `json:"idle,omitempty"`
}

// Outcome is one provider's part of a Result.
type Outcome struct {
	Provider string `json:"provider"`
	Status   Status `json:"status"`
	// ExpiresAt is the published token's expiry, RFC 3339 UTC, when there is one.
	ExpiresAt string `json:"expires_at,omitempty"`
	// Reason says why a provider was skipped.
	Reason string `json:"reason,omitempty"`
	// Error says why a provider failed.
	Error string `json:"error,omitempty"`
	// Note flags something an operator should act on although the refresh worked.
	Note string `json:"note,omitempty"`
}

// Counts tallies the outcomes by status.
func (r Result) Counts() map[Status]int {
	c := map[Status]int{}
	for _, o := range r.Results {
		c[o.Status]++
	}
	return c
}
