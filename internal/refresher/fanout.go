package refresher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/token-refresher/token-refresher/internal/cut"
	"github.com/token-refresher/token-refresher/internal/queue"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/store"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// Fanning out
//
// One invocation refreshes every due provider until the number of providers, the
// write quota and Lambda's timeout say otherwise (docs/performance.md, scaling). A
// fanned-out deployment splits the work on AWS's own engines: the scheduled run
// plans (it decides what is due, after the run record as always) and sends one job
// per due provider to an SQS queue; the same function, subscribed to the queue by
// an event source mapping whose maximum concurrency bounds the writes per second,
// refreshes each batch of jobs and reports the jobs that failed, so that only those
// come back, until the queue's dead-letter queue takes them.
//
// A job may arrive twice (SQS delivers at least once), late, or beside a scheduled
// run that planned it again. A worker therefore decides again before it asks a
// provider: a refresh job whose token is no longer due, and a rotation job whose
// token was issued after the job was planned, are skipped; and what it publishes
// goes through the store's overlapping-writers rule, so the longer-lived of two
// valid tokens stays published. A duplicate changes nothing, and a late one never
// publishes an older token.

// InlineRotations is the most providers a rotation names that a planner refreshes
// itself rather than sending to the queue: a manual rotation of a few providers
// answers with their new tokens, as without fan-out.
const InlineRotations = 20

// JobQueue sends jobs to the workers; *queue.Queue is one. Send returns, by index,
// an error for each message it could not send.
type JobQueue interface {
	Send(ctx context.Context, msgs []queue.Message) map[int]error
}

// Job is one provider sent to the workers: the body of one queue message.
type Job struct {
	Provider string `json:"provider"`
	// PlannedAt is when the planner read the token it decided on.
	PlannedAt time.Time `json:"planned_at"`
	// Rotate asks for a new token whatever the published one claims, unless the
	// parameter was written since the planner read it at Version.
	Rotate bool `json:"rotate,omitempty"`
	// Version is the version of the token's parameter the planner decided on (0:
	// none was published). A rotation job is done once the parameter has another
	// version: an exact test where the published issued_at, cut to whole seconds,
	// cannot tell a rotation made within the second the job was planned from none.
	// Nil in a job sent before the field existed.
	Version *int64 `json:"version,omitempty"`
	// MessageID is the queue's id of the message, from the event; not in the body.
	MessageID string `json:"-"`
	// err says why the body could not be read as a job.
	err error
}

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

// fansOut says whether a planner sends pl's due providers to the queue.
func (r *Refresher) fansOut(req Request, pl *plan) bool {
	if r.Queue == nil || req.DryRun || len(pl.due) == 0 {
		return false
	}
	return req.Action == ActionRefresh || req.Action == ActionRotate && len(pl.outcomes) > InlineRotations
}

// enqueue sends one job per due provider; the provider's outcome is "queued", or
// failed when its job could not be sent.
func (r *Refresher) enqueue(ctx context.Context, pl *plan) {
	msgs := make([]queue.Message, len(pl.due))
	for k, j := range pl.due {
		msgs[k] = message(Job{Provider: j.p.Name, PlannedAt: pl.started, Rotate: j.rotate, Version: &j.version}, j.version)
	}
	errs := r.Queue.Send(ctx, msgs)
	for k, j := range pl.due {
		o := Outcome{Provider: j.p.Name, Status: StatusQueued, Reason: pl.reasons[k]}
		if err := errs[k]; err != nil {
			o = Outcome{Provider: j.p.Name, Status: StatusFailed, Error: "not sent to the workers: " + bound(err.Error())}
		}
		pl.outcomes[j.i] = o
		r.report(ctx, o, j.cur, 0)
	}
}

// message is a job as a queue message. On the FIFO queue the template makes, its
// group is the provider, so that SQS never hands two jobs of one provider to
// workers at once, and its deduplication id is the provider, the version of the
// parameter the job was decided on and whether it rotates, so that a planner that
// runs again before the workers got to a job adds nothing for five minutes.
func message(j Job, version int64) queue.Message {
	body, _ := json.Marshal(j) // a Job always marshals
	group := j.Provider
	if len(group) > maxGroupID {
		group = digest(group)
	}
	return queue.Message{Body: string(body), Group: group, Dedup: digest(fmt.Sprintf("%s|%d|%t", j.Provider, version, j.Rotate))}
}

// maxGroupID is the longest MessageGroupId SQS takes.
const maxGroupID = 128

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// work is a worker's run: it refreshes the providers of the jobs it was given that
// are still due, and reports the jobs that failed so that the queue sends only
// those again. It reads just those providers' tokens.
func (r *Refresher) work(d deadlines, req Request) Result {
	pl := &plan{outcomes: make([]Outcome, len(req.Jobs)), started: r.now()}
	var failed []events.SQSBatchItemFailure
	jobs, first := merged(req.Jobs)
	// retry sends job i's message again, with every other message of its provider
	// in the batch: a rotation merged into a failed refresh must not be deleted with
	// the refresh's success nowhere in sight, and on the FIFO queue a provider's later
	// messages must stay behind its earlier ones.
	retry := func(i int) {
		for k := range req.Jobs {
			if k == i || first[k] == i && k != first[k] {
				failed = append(failed, events.SQSBatchItemFailure{ItemIdentifier: req.Jobs[k].MessageID})
			}
		}
	}
	providers := make([]registry.Provider, len(req.Jobs))
	var params []string
	for i, j := range req.Jobs {
		p, ok := r.Providers.Lookup(j.Provider)
		switch {
		case j.err != nil:
			pl.outcomes[i] = Outcome{Provider: cut.String(j.Provider, maxName), Status: StatusFailed, Error: j.err.Error()}
			retry(i) // until the dead-letter queue keeps it for a look
		case !ok:
			// The registry changed since the job was planned: nothing to retry.
			pl.outcomes[i] = Outcome{Provider: cut.String(j.Provider, maxName), Status: StatusSkipped, Reason: "no longer in the registry"}
		case first[i] != i:
			pl.outcomes[i] = Outcome{Provider: j.Provider, Status: StatusSkipped, Reason: "another message of this batch has the same provider"}
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
		return Result{Results: pl.outcomes, BatchItemFailures: failed}
	}
	published, err := r.Store.Tokens(d.work, params)
	if err != nil {
		for i := range req.Jobs {
			if providers[i].Name != "" {
				pl.outcomes[i] = Outcome{Provider: providers[i].Name, Status: StatusFailed, Error: "the published tokens could not be read: " + bound(err.Error())}
				r.report(d.work, pl.outcomes[i], nil, 0)
				retry(i)
			}
		}
		return Result{Results: pl.outcomes, BatchItemFailures: failed}
	}
	pl.published = published.Tokens
	now := r.now()
	for i, p := range providers {
		if p.Name == "" {
			continue
		}
		var cur *tokens.Token
		if t, ok := published.Tokens[p.Parameter]; ok {
			cur = &t
		}
		due, reason := r.stillDue(now, p, cur, jobs[i], published)
		if !due {
			pl.outcomes[i] = Outcome{Provider: p.Name, Status: StatusSkipped, Reason: reason}
			if cur != nil {
				pl.outcomes[i].ExpiresAt = stamp(cur.ExpiresAt)
			}
			r.report(d.work, pl.outcomes[i], cur, 0)
			continue
		}
		pl.due = append(pl.due, job{i: i, p: p, cur: cur, version: published.Versions[p.Parameter], rotate: jobs[i].Rotate})
	}
	r.refreshDue(d, Request{Action: ActionWork, Trigger: TriggerQueue}, pl)
	if r.State != nil {
		r.recordHealth(d.publish, pl)
	}
	for _, j := range pl.due {
		if pl.outcomes[j.i].Status == StatusFailed {
			retry(j.i)
		}
	}
	return Result{Results: pl.outcomes, BatchItemFailures: failed}
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
		if j.Rotate && (!jobs[f].Rotate || j.PlannedAt.After(jobs[f].PlannedAt)) {
			jobs[f].Rotate, jobs[f].PlannedAt = true, j.PlannedAt
		}
	}
	return jobs, first
}

// stillDue decides a job again against the token published now.
func (r *Refresher) stillDue(now time.Time, p registry.Provider, cur *tokens.Token, j Job, published store.Published) (bool, string) {
	if merr, bad := published.Malformed[p.Parameter]; bad {
		return true, merr.Error()
	}
	if j.Rotate {
		if j.Version != nil {
			if v := published.Versions[p.Parameter]; v != *j.Version {
				return false, fmt.Sprintf("rotated since the job was planned (version %d, planned on %d)", v, *j.Version)
			}
			return true, "rotation requested"
		}
		// A job sent before versions were: as then, by the clock.
		if cur != nil && cur.Provider == p.Name && cur.IssuedAt.After(j.PlannedAt) {
			return false, fmt.Sprintf("rotated since the job was planned (%s)", stamp(j.PlannedAt))
		}
		return true, "rotation requested"
	}
	d := r.decide(now, p, cur, Request{Action: ActionRefresh})
	if !d.Due {
		return false, "not due any more: " + d.Reason
	}
	return true, d.Reason
}
