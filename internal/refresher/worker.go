package refresher

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/token-refresher/token-refresher/internal/cut"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// errNotAJob is the error of a message whose body is not a job.
var errNotAJob = errors.New(`not a job: want {"provider":...,"planned_at":...}`)

// decodeJob reads one queue message's body.
func decodeJob(messageID, body string) Job {
	var j Job
	if err := json.Unmarshal([]byte(body), &j); err != nil || j.Provider == "" || j.PlannedAt.IsZero() {
		return Job{MessageID: messageID, err: errNotAJob}
	}
	j.MessageID = messageID
	return j
}

// batch is a worker's run: it refreshes the providers of the jobs it was given that
// are still due, and reports the jobs that failed so that the queue sends only
// those again. It reads just those providers' tokens.
func (u *run) batch(in []Job) Result {
	r := u.r
	u.worker = true
	u.outcomes, u.started = make([]Outcome, len(in)), r.now()
	var failed []events.SQSBatchItemFailure
	jobs, first := merged(in)
	// retry sends job i's message again, with every other message of its provider
	// in the batch: a rotation merged into a failed refresh must not be deleted with
	// the refresh's success nowhere in sight, and on the FIFO queue a provider's later
	// messages must stay behind its earlier ones.
	retry := func(i int) {
		for k := range in {
			if k == i || first[k] == i && k != first[k] {
				failed = append(failed, events.SQSBatchItemFailure{ItemIdentifier: in[k].MessageID})
			}
		}
	}
	providers := make([]registry.Provider, len(in))
	var params []string
	for i, j := range in {
		p, ok := r.Providers.Lookup(j.Provider)
		switch {
		case j.err != nil:
			u.outcomes[i] = Outcome{Provider: cut.String(j.Provider, maxName), Status: StatusFailed, Error: j.err.Error()}
			retry(i) // until the dead-letter queue keeps it for a look
		case !ok:
			// The registry changed since the job was planned: nothing to retry.
			u.outcomes[i] = Outcome{Provider: cut.String(j.Provider, maxName), Status: StatusSkipped, Reason: "no longer in the registry"}
		case first[i] != i:
			u.outcomes[i] = Outcome{Provider: j.Provider, Status: StatusSkipped, Reason: "another message of this batch has the same provider"}
		default:
			providers[i] = p
			params = append(params, p.Parameter)
			if jobs[i].Rotate {
				// As in a rotation without fan-out: the credentials are read anew.
				r.Secrets.Invalidate(p.SecretID)
			}
		}
	}
	if len(params) == 0 {
		return Result{Results: u.outcomes, BatchItemFailures: failed}
	}
	published, err := u.tokens(params)
	if err != nil {
		u.unreadable(providers, err)
		for i, p := range providers {
			if p.Name != "" {
				retry(i)
			}
		}
		return Result{Results: u.outcomes, BatchItemFailures: failed}
	}
	u.published = published.Tokens
	now := r.now()
	for i, p := range providers {
		if p.Name == "" {
			continue
		}
		if jobs[i].Rotate && jobs[i].IfToken != "" {
			u.sortConditional(i, p, published, jobs[i].IfToken, true)
			continue
		}
		u.sort(i, p, published, jobs[i].Rotate, func(cur *tokens.Token) (bool, string) {
			return u.stillDue(now, p, cur, jobs[i], published.Versions[p.Parameter])
		})
	}
	u.refreshDue(u.due)
	if r.State != nil {
		u.recordHealth()
	}
	for _, j := range u.due {
		if u.outcomes[j.i].Status == StatusFailed {
			retry(j.i)
		}
	}
	return Result{Results: u.outcomes, BatchItemFailures: failed}
}

// merged finds the jobs of a batch that name the same provider (a FIFO group's
// messages can arrive together): first[i] is the index of the first job of job i's
// provider, and jobs[first] is that provider's job, merged: it rotates when any of
// them does, as planned by the latest of those.
func merged(in []Job) (jobs []Job, first []int) {
	jobs, first = slices.Clone(in), make([]int, len(in))
	seen := map[string]int{}
	for i, j := range in {
		f, ok := seen[j.Provider]
		if !ok || j.err != nil {
			seen[j.Provider], first[i] = i, i
			continue
		}
		first[i] = f
		if !j.Rotate {
			continue
		}
		// An unconditional rotation wins over a conditional one.
		switch {
		case !jobs[f].Rotate:
			jobs[f].IfToken = j.IfToken
		case jobs[f].IfToken != "" && j.IfToken == "":
			jobs[f].IfToken = ""
		case jobs[f].IfToken != "" && j.PlannedAt.After(jobs[f].PlannedAt):
			jobs[f].IfToken = j.IfToken
		}
		if !jobs[f].Rotate || j.PlannedAt.After(jobs[f].PlannedAt) {
			jobs[f].Rotate, jobs[f].PlannedAt = true, j.PlannedAt
		}
	}
	return jobs, first
}

// stillDue decides a job again against the token published now, at version of
// its parameter. A malformed token is due before this is asked.
func (u *run) stillDue(now time.Time, p registry.Provider, cur *tokens.Token, j Job, version int64) (bool, string) {
	if j.Rotate {
		if j.Version != nil {
			if version != *j.Version {
				return false, fmt.Sprintf("rotated since the job was planned (version %d, planned on %d)", version, *j.Version)
			}
			return true, "rotation requested"
		}
		// A job sent before versions were: as then, by the clock.
		if cur != nil && cur.Provider == p.Name && cur.IssuedAt.After(j.PlannedAt) {
			return false, fmt.Sprintf("rotated since the job was planned (%s)", stamp(j.PlannedAt))
		}
		return true, "rotation requested"
	}
	d := u.r.decide(now, p, cur, false)
	if !d.Due {
		return false, "not due any more: " + d.Reason
	}
	return true, d.Reason
}
