package refresher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/token-refresher/token-refresher/internal/queue"
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
// come back, until the queue's dead-letter queue takes them. The planner refreshes
// its own share of the due providers itself meanwhile (see keep).
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
	// IfToken makes a rotation job conditional (Request.IfToken): the worker
	// rotates only while the published token has this fingerprint, and only
	// holding the provider's lease; Version is then not asked.
	IfToken string `json:"if_token,omitempty"`
	// MessageID is the queue's id of the message, from the event; not in the body.
	MessageID string `json:"-"`
	// err says why the body could not be read as a job.
	err error
}

// fansOut says whether a planner sends the due providers to the queue.
func (u *run) fansOut(a Action) bool {
	return len(u.due) > 0 && u.queues(a, len(u.outcomes))
}

// queues says whether a planner sends the due providers of a request for action
// over n providers to the queue.
func (u *run) queues(a Action, n int) bool {
	if u.r.Queue == nil || u.dryRun {
		return false
	}
	return a == ActionRefresh || a == ActionRotate && n > InlineRotations
}

// enqueue sends one job per due provider of jobs, whose reasons are at the same
// index; the provider's outcome is "queued", or failed when its job could not be
// sent.
func (u *run) enqueue(jobs []due, reasons []string) {
	if len(jobs) == 0 {
		return
	}
	msgs := make([]queue.Message, len(jobs))
	for k, j := range jobs {
		msgs[k] = message(Job{Provider: j.p.Name, PlannedAt: u.started, Rotate: j.rotate, Version: &j.version, IfToken: j.ifToken}, j.version)
	}
	errs := u.r.Queue.Send(u.work, msgs)
	for k, j := range jobs {
		o := Outcome{Provider: j.p.Name, Status: StatusQueued, Reason: reasons[k]}
		if err := errs[k]; err != nil {
			o = Outcome{Provider: j.p.Name, Status: StatusFailed, Error: "not sent to the workers: " + bound(err.Error())}
		}
		u.outcomes[j.i] = o
		u.r.report(u.work, o, j.cur, 0)
	}
}

// keepSlack is the part of a planner's remaining time its own share of the
// writes is planned on: the rest covers the last token requests' latency and the
// records written after them.
const keepSlack = 0.8

// keep is how many due providers a planner refreshes itself, the last ones of
// u.due, while the workers refresh the others from the queue.
//
// The write budget gives each of Shares invocations, the workers and the planner,
// an equal share (ssmput.NewLimiter), so that their sum holds. A planner that only
// sent jobs would leave its share idle while the workers drain the queue, and a
// drain at the budget would take Shares/(Shares-1) of the time the budget allows:
// 1.25 with four workers. So it keeps 1/Shares of the due providers, as many as a
// worker's share writes in the same time, and refreshes them as a run without
// fan-out does, after the others were sent. It keeps fewer when its share would
// not write them before its deadline: a job sent is done as soon as a worker is
// free, while a provider the planner does not reach waits for a later run (a
// rotation in the run record, see pending.go).
//
// Without a budget it keeps none: the workers' concurrency then bounds the pace,
// not shares. A conditional rotation is never kept: the planner took no lease for
// it (see plan).
func (u *run) keep() int {
	r := u.r
	if r.Shares < 2 || r.Writes == nil || r.Writes.Rate() <= 0 {
		return 0
	}
	for _, j := range u.due {
		if j.ifToken != "" {
			return 0
		}
	}
	n := (len(u.due) + r.Shares - 1) / r.Shares
	if end, ok := u.work.Deadline(); ok {
		n = min(n, int(r.Writes.Rate()*time.Until(end).Seconds()*keepSlack))
	}
	return max(n, 0)
}

// message is a job as a queue message. On the FIFO queue the template makes, its
// group is the provider, so that SQS never hands two jobs of one provider to
// workers at once, and its deduplication id is the provider, the version of the
// parameter the job was decided on, whether it rotates and, for a conditional
// rotation, the refused token, so that a planner that
// runs again before the workers got to a job adds nothing for five minutes.
func message(j Job, version int64) queue.Message {
	body, _ := json.Marshal(j) // a Job always marshals
	group := j.Provider
	if len(group) > maxGroupID {
		group = digest(group)
	}
	dedup := fmt.Sprintf("%s|%d|%t", j.Provider, version, j.Rotate)
	if j.IfToken != "" {
		dedup += "|" + j.IfToken
	}
	return queue.Message{Body: string(body), Group: group, Dedup: digest(dedup)}
}

// maxGroupID is the longest MessageGroupId SQS takes.
const maxGroupID = 128

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
