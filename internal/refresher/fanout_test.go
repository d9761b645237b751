package refresher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/queue"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/secrets"
)

// fakeQueue keeps the messages it was sent; fail, when set, loses those whose
// index it names, with failWith or a throttling error.
type fakeQueue struct {
	mu       sync.Mutex
	sent     [][]queue.Message // by Send call
	fail     func(i int) bool
	failWith error
}

func (q *fakeQueue) Send(_ context.Context, msgs []queue.Message) map[int]error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sent = append(q.sent, msgs)
	var errs map[int]error
	for i := range msgs {
		if q.fail != nil && q.fail(i) {
			if errs == nil {
				errs = map[int]error{}
			}
			errs[i] = fmt.Errorf("%w: ThrottlingException", queue.ErrNotSent)
			if q.failWith != nil {
				errs[i] = fmt.Errorf("%w: %w", queue.ErrNotSent, q.failWith)
			}
		}
	}
	return errs
}

func (q *fakeQueue) last() []queue.Message {
	if len(q.sent) == 0 {
		return nil
	}
	return q.sent[len(q.sent)-1]
}

// delivery is the event the event source mapping makes of msgs; message i's id is
// prefix + i.
func delivery(t *testing.T, prefix string, msgs []queue.Message) []byte {
	t.Helper()
	var ev events.SQSEvent
	for i, m := range msgs {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("%s%d", prefix, i), Body: m.Body, EventSource: "aws:sqs",
			EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:token-refresher-jobs.fifo"})
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func jobMessage(t *testing.T, j Job) queue.Message {
	t.Helper()
	return message(j, 0)
}

var scheduled = []byte(`{"detail-type":"Scheduled Event","source":"aws.events"}`)

// handle runs one event through the handler as Lambda does.
func handle(t *testing.T, r *Refresher, event []byte) (Result, error) {
	t.Helper()
	h := &Handler{Refresher: r}
	res, err := h.Handle(context.Background(), event)
	// Lambda reads the result as JSON: what the event source mapping sees.
	if _, merr := json.Marshal(res); merr != nil {
		t.Fatal(merr)
	}
	return res, err
}

func failedMessages(res Result) []string {
	var ids []string
	for _, f := range res.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

// TestFanOutPlannerAndWorkers is the fanned-out cycle: the planner sends only the
// due providers and asks none of them for a token; the workers refresh them; a
// duplicate delivery changes nothing; the next planner run finds nothing due.
func TestFanOutPlannerAndWorkers(t *testing.T) {
	w := newWorld(t)
	q := &fakeQueue{}
	r := w.refresher()
	r.Queue = q

	res, err := handle(t, r, scheduled)
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Counts(); c[StatusQueued] != 5 || len(q.last()) != 5 {
		t.Fatalf("planner: got %+v, %d messages, want 5 %q and 5 messages", res.Results, len(q.last()), StatusQueued)
	}
	if w.srv.TotalRequests() != 0 || w.store.writes != 0 || w.state.healthReads+w.state.healthWrites != 0 {
		t.Fatalf("the planner: got %d token requests, %d tokens written, %d uses of health records, want none", w.srv.TotalRequests(), w.store.writes,
			w.state.healthReads+w.state.healthWrites)
	}
	// It read the registry's parameters' metadata by name, and decrypted nothing.
	if w.store.described != 5 || w.store.reads != 0 {
		t.Fatalf("planner: got %d parameters described and %d decrypted, want 5 and 0", w.store.described, w.store.reads)
	}
	if res.NextDue != "" {
		t.Fatalf("planner: got next due time %s before the workers ran, want none", res.NextDue)
	}
	groups := map[string]bool{}
	for _, m := range q.last() {
		var j Job
		if err := json.Unmarshal([]byte(m.Body), &j); err != nil || j.Rotate || j.PlannedAt.IsZero() || m.Group != j.Provider {
			t.Fatalf("got message %+v (err %v), want a refresh job with planned_at, grouped by its provider", m, err)
		}
		groups[m.Group] = true
	}
	if len(groups) != 5 {
		t.Fatalf("got groups %v, want 5", groups)
	}
	// A planner that runs again before the workers did sends the same deduplication
	// ids: the FIFO queue drops the second set.
	first := q.last()
	if _, err := handle(t, r, scheduled); err != nil {
		t.Fatal(err)
	}
	for i, m := range q.last() {
		if m.Dedup != first[i].Dedup {
			t.Fatalf("dedup id of %s: got %s, want %s as in the first plan", m.Group, m.Dedup, first[i].Dedup)
		}
	}

	res, err = handle(t, r, delivery(t, "a", first))
	if err != nil || res.Counts()[StatusRefreshed] != 5 || len(res.BatchItemFailures) != 0 {
		t.Fatalf("workers: got err %v, %+v, want nil, 5 %q, no batch item failures", err, res, StatusRefreshed)
	}
	for _, d := range oauthtest.Dialects() {
		st := w.srv.Stats(string(d))
		if len(st.Issued) != 1 || w.store.tokens[param(string(d))].AccessToken != st.Issued[0] {
			t.Fatalf("%s: got issued %v, published %+v, want one token issued and published", d, st.Issued, w.store.tokens[param(string(d))])
		}
	}
	if w.state.healthReads == 0 {
		t.Fatal("got no health record read by the workers, want them brought up to date")
	}

	// SQS delivers at least once: the same messages again ask nobody and write nothing.
	writes, requests := w.store.writes, w.srv.TotalRequests()
	res, err = handle(t, r, delivery(t, "b", first))
	if err != nil || res.Counts()[StatusSkipped] != 5 || len(res.BatchItemFailures) != 0 {
		t.Fatalf("duplicate delivery: got err %v, %+v, want nil, 5 %q, no batch item failures", err, res, StatusSkipped)
	}
	for _, o := range res.Results {
		if !strings.HasPrefix(o.Reason, "not due any more") {
			t.Fatalf("duplicate: got %+v, want reason \"not due any more\"", o)
		}
	}
	if w.store.writes != writes || w.srv.TotalRequests() != requests {
		t.Fatalf("a duplicate delivery: got %d writes, %d token requests, want none", w.store.writes-writes, w.srv.TotalRequests()-requests)
	}

	sends := len(q.sent)
	res, err = handle(t, r, scheduled)
	if err != nil || res.Counts()[StatusSkipped] != 5 || len(q.sent) != sends || res.NextDue == "" {
		t.Fatalf("planner after the workers: got err %v, %+v, %d sends, want nil, 5 %q, no send, a next due time", err, res, len(q.sent)-sends, StatusSkipped)
	}
}

// TestFanOutWorkerReportsOnlyFailedJobs: the event source mapping sends again only
// the messages named in BatchItemFailures, so those are exactly the failed jobs,
// and the invocation itself succeeds.
func TestFanOutWorkerReportsOnlyFailedJobs(t *testing.T) {
	w := newWorld(t)
	w.srv.SetFault("cardlytics", oauthtest.Fault{Kind: oauthtest.ServerError, Status: 500})
	r := w.refresher()
	r.Queue = &fakeQueue{}
	now := time.Now()
	var msgs []queue.Message
	for _, d := range oauthtest.Dialects() {
		msgs = append(msgs, jobMessage(t, Job{Provider: string(d), PlannedAt: now}))
	}
	msgs = append(msgs, queue.Message{Body: `{"provider":"ecard"}`}) // no planned_at: not a job
	msgs = append(msgs, jobMessage(t, Job{Provider: "removed-since", PlannedAt: now}))

	res, err := handle(t, r, delivery(t, "m", msgs))
	if err != nil {
		t.Fatalf("a worker's invocation: got err %v, want nil", err)
	}
	var cardlytics int
	for i, d := range oauthtest.Dialects() {
		if d == oauthtest.Cardlytics {
			cardlytics = i
		}
	}
	want := []string{fmt.Sprintf("m%d", cardlytics), "m5"}
	slices.Sort(want)
	if got := failedMessages(res); !slices.Equal(got, want) {
		t.Fatalf("batch item failures %v, want %v; results %+v", got, want, res.Results)
	}
	if o := res.Results[6]; o.Status != StatusSkipped || !strings.Contains(o.Reason, "no longer in the registry") {
		t.Fatalf("unknown provider: got %+v, want %q, \"no longer in the registry\"", o, StatusSkipped)
	}
	if c := res.Counts(); c[StatusRefreshed] != 4 || c[StatusFailed] != 2 {
		t.Fatalf("got counts %v, want 4 %q and 2 %q: %+v", c, StatusRefreshed, StatusFailed, res.Results)
	}
	if h := w.state.health["cardlytics"]; h.ConsecutiveFailures == 0 {
		t.Fatalf("got cardlytics' health %+v, want its failure counted", h)
	}
}

// TestFanOutFailedProviderReturnsAllItsMessages: a refresh job and a rotation job
// of one provider in a batch are worked as one; when that fails, both messages come
// back, so the retried batch still rotates, and so do the provider's later
// messages, as FIFO order wants, while other providers' messages are done.
func TestFanOutFailedProviderReturnsAllItsMessages(t *testing.T) {
	w := newWorld(t)
	w.srv.SetFault("booking", oauthtest.Fault{Kind: oauthtest.ServerError, Status: 500})
	r := w.refresher()
	r.Queue = &fakeQueue{}
	now := time.Now()
	msgs := []queue.Message{
		jobMessage(t, Job{Provider: "booking", PlannedAt: now}),
		jobMessage(t, Job{Provider: "ecard", PlannedAt: now}),
		jobMessage(t, Job{Provider: "booking", PlannedAt: now, Rotate: true}),
		jobMessage(t, Job{Provider: "booking", PlannedAt: now}),
	}
	res, err := handle(t, r, delivery(t, "m", msgs))
	if err != nil {
		t.Fatalf("a worker's invocation: got err %v, want nil", err)
	}
	if got, want := failedMessages(res), []string{"m0", "m2", "m3"}; !slices.Equal(got, want) {
		t.Fatalf("got batch item failures %v, want %v (every message of the failed provider); results %+v", got, want, res.Results)
	}
	if got := res.Results[1].Status; got != StatusRefreshed {
		t.Fatalf("got ecard %s, want refreshed", got)
	}
}

// TestFanOutRotationJobs: a rotation job replaces a fresh token, once: the same job
// delivered again, or one planned before the token was issued, is skipped; two
// jobs of one provider in a batch make one token.
func TestFanOutRotationJobs(t *testing.T) {
	w := newWorld(t)
	r := w.refresher()
	if _, err := r.Run(context.Background(), Request{Action: ActionRefresh}); err != nil {
		t.Fatal(err)
	}
	r.Queue = &fakeQueue{}
	before := w.store.tokens[param("ecard")]
	planned := time.Now()
	version := w.store.versions[param("ecard")]
	rotate := []queue.Message{jobMessage(t, Job{Provider: "ecard", PlannedAt: planned, Rotate: true, Version: &version})}

	res, err := handle(t, r, delivery(t, "r", rotate))
	if err != nil || res.Results[0].Status != StatusRefreshed || w.store.tokens[param("ecard")].AccessToken == before.AccessToken {
		t.Fatalf("rotation job: got err %v, %+v, want nil, %q and a new token", err, res, StatusRefreshed)
	}
	requests := w.srv.Stats("ecard").Requests
	res, err = handle(t, r, delivery(t, "again", rotate))
	if err != nil || res.Results[0].Status != StatusSkipped || !strings.Contains(res.Results[0].Reason, "rotated since") {
		t.Fatalf("redelivered rotation job: got err %v, %+v, want nil, %q, \"rotated since\"", err, res, StatusSkipped)
	}
	// The same job again, planned after the token it replaced was issued (within
	// the same second, as when a worker takes a job up at once; the published
	// issued_at is cut to whole seconds): the version says it is done.
	later := []queue.Message{jobMessage(t, Job{Provider: "ecard", PlannedAt: time.Now().Add(time.Second), Rotate: true, Version: &version})}
	res, err = handle(t, r, delivery(t, "later", later))
	if err != nil || res.Results[0].Status != StatusSkipped || !strings.Contains(res.Results[0].Reason, "rotated since") {
		t.Fatalf("redelivered rotation job planned after the new token: got %v %+v, want skipped, rotated since", err, res)
	}
	old := []queue.Message{jobMessage(t, Job{Provider: "ecard", PlannedAt: planned.Add(-time.Hour), Rotate: true})}
	if res, _ := handle(t, r, delivery(t, "old", old)); res.Results[0].Status != StatusSkipped {
		t.Fatalf("rotation planned before the token: got %+v, want %q", res, StatusSkipped)
	}
	if n := w.srv.Stats("ecard").Requests; n != requests {
		t.Fatalf("skipped jobs: got %d token requests, want none", n-requests)
	}

	// A refresh job and a rotation job of booking in one batch: one token.
	issued := len(w.srv.Stats("booking").Issued)
	both := []queue.Message{
		jobMessage(t, Job{Provider: "booking", PlannedAt: time.Now()}),
		jobMessage(t, Job{Provider: "booking", PlannedAt: time.Now(), Rotate: true}),
	}
	res, err = handle(t, r, delivery(t, "b", both))
	if err != nil || res.Results[0].Status != StatusRefreshed || res.Results[1].Status != StatusSkipped ||
		len(w.srv.Stats("booking").Issued) != issued+1 {
		t.Fatalf("two jobs of one provider: got err %v, %+v, want nil, %q then %q, one token issued", err, res, StatusRefreshed, StatusSkipped)
	}
}

// TestFanOutRotationsInline: a planner refreshes small rotations itself, as
// without fan-out, so that a rotation by hand answers with the new tokens; larger
// ones go to the workers.
func TestFanOutRotationsInline(t *testing.T) {
	w := manyWorld(t, InlineRotations+5)
	q := &fakeQueue{}
	r := w.refresher()
	r.Queue = q

	res, err := r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"p00", "p01", "p02"}, Trigger: triggerManual})
	if err != nil || res.Counts()[StatusRefreshed] != 3 || len(q.sent) != 0 {
		t.Fatalf("small rotation: got err %v, %+v, %d sends, want nil, 3 %q, no send", err, res, len(q.sent), StatusRefreshed)
	}
	res, err = r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"p00", "p01", "p02"}, Trigger: triggerManual, DryRun: true})
	if err != nil || res.Counts()[StatusChecked] != 3 || len(q.sent) != 0 {
		t.Fatalf("dry run: got err %v, %+v, want nil, 3 %q, no send", err, res, StatusChecked)
	}
	res, err = r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}, Trigger: triggerManual})
	if err != nil || res.Counts()[StatusQueued] != InlineRotations+5 || len(q.last()) != InlineRotations+5 {
		t.Fatalf("rotate all: got err %v, %+v, want nil and %d %q, as many sent", err, res, InlineRotations+5, StatusQueued)
	}
	for _, m := range q.last() {
		var j Job
		if json.Unmarshal([]byte(m.Body), &j) != nil || !j.Rotate {
			t.Fatalf("rotate-all: got message %s, want a rotation job", m.Body)
		}
	}
}

// TestFanOutUnsentJobsFail: a job the queue did not take is that provider's
// failure, so the run fails and the next one plans it again.
func TestFanOutUnsentJobsFail(t *testing.T) {
	w := newWorld(t)
	r := w.refresher()
	r.Queue = &fakeQueue{fail: func(i int) bool { return i == 1 }}
	res, err := r.Run(context.Background(), Request{Action: ActionRefresh, Trigger: TriggerSchedule})
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("got err %v, want errors.Is(err, ErrFailed)", err)
	}
	if c := res.Counts(); c[StatusQueued] != 4 || c[StatusFailed] != 1 {
		t.Fatalf("got counts %v, want 4 %q and 1 %q: %+v", c, StatusQueued, StatusFailed, res.Results)
	}
	for _, o := range res.Results {
		if o.Status == StatusFailed && !strings.Contains(o.Error, "not sent to the workers") {
			t.Fatalf("got %+v, want the error \"not sent to the workers\"", o)
		}
	}
}

// TestFanOutWorkerStoreFailure: when the published tokens cannot be read, nothing
// is decided and every job comes back.
func TestFanOutWorkerStoreFailure(t *testing.T) {
	w := newWorld(t)
	w.store.currentErr = errors.New("AccessDeniedException")
	r := w.refresher()
	r.Queue = &fakeQueue{}
	msgs := []queue.Message{jobMessage(t, Job{Provider: "ecard", PlannedAt: time.Now()}), jobMessage(t, Job{Provider: "booking", PlannedAt: time.Now()})}
	res, err := handle(t, r, delivery(t, "m", msgs))
	if err != nil || !slices.Equal(failedMessages(res), []string{"m0", "m1"}) || w.srv.TotalRequests() != 0 {
		t.Fatalf("got err %v, %+v, want nil, failures m0 and m1, no token request", err, res)
	}
}

func TestMerged(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	in := []Job{
		{Provider: "a", PlannedAt: t0},
		{Provider: "b", PlannedAt: t0},
		{Provider: "a", PlannedAt: t0.Add(time.Minute), Rotate: true},
		{Provider: "a", PlannedAt: t0.Add(-time.Minute), Rotate: true},
		{MessageID: "x", err: errNotAJob},
		{MessageID: "y", err: errNotAJob},
	}
	jobs, first := merged(in)
	if !slices.Equal(first, []int{0, 1, 0, 0, 4, 5}) {
		t.Fatalf("got first %v, want [0 1 0 0 4 5]", first)
	}
	if !jobs[0].Rotate || !jobs[0].PlannedAt.Equal(t0.Add(time.Minute)) || jobs[1].Rotate {
		t.Fatalf("got merged %+v, want a's rotation planned latest, b a refresh", jobs)
	}
}

func TestMessage(t *testing.T) {
	j := Job{Provider: "ecard", PlannedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	a, b := message(j, 3), message(j, 3)
	if a.Dedup != b.Dedup || a.Group != "ecard" {
		t.Fatalf("got %+v and %+v, want one dedup id, group ecard", a, b)
	}
	// Another version of the token, a rotation, or another provider is another job;
	// when the job was planned is not part of it.
	for _, other := range []queue.Message{message(j, 4), message(Job{Provider: "ecard", PlannedAt: j.PlannedAt, Rotate: true}, 3),
		message(Job{Provider: "booking", PlannedAt: j.PlannedAt}, 3)} {
		if other.Dedup == a.Dedup {
			t.Fatalf("got %+v deduplicated with %+v, want another dedup id", other, a)
		}
	}
	if later := message(Job{Provider: "ecard", PlannedAt: j.PlannedAt.Add(time.Minute)}, 3); later.Dedup != a.Dedup {
		t.Fatalf("a later plan of the same token: got dedup id %s, want %s", later.Dedup, a.Dedup)
	}
	long := message(Job{Provider: strings.Repeat("x", 200), PlannedAt: j.PlannedAt}, 0)
	if len(long.Group) > 128 || len(long.Dedup) > 128 {
		t.Fatalf("got ids of %d and %d characters, want at most SQS's 128", len(long.Group), len(long.Dedup))
	}
}

// manyWorld is n providers of one dialect, p00, p01, ..., each with its secret.
func manyWorld(t *testing.T, n int) *world {
	t.Helper()
	w := &world{srv: oauthtest.NewServer(), secrets: newFakeSecrets(), store: newFakeStore(), state: newFakeState(), urls: map[string]string{}}
	t.Cleanup(w.srv.Close)
	var doc strings.Builder
	doc.WriteString("providers:\n")
	for i := range n {
		name := fmt.Sprintf("p%02d", i)
		sec := secrets.Secret{ClientID: "id-" + name, ClientSecret: "secret " + name, VersionID: "v1"}
		u := w.srv.Add(oauthtest.Provider{Name: name, Dialect: oauthtest.ECard, ClientID: sec.ClientID, ClientSecret: sec.ClientSecret})
		w.secrets.current["token-refresher/"+name] = sec
		doc.WriteString(registry.EntryYAML(name, "token-refresher/"+name, oauthtest.ECard.Endpoint(u)))
	}
	reg, err := registry.Load(strings.NewReader(doc.String()), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.reg = reg
	return w
}

// TestPlannerKeepsItsShare: with a write budget of Shares equal shares, a planner
// refreshes 1/Shares of the due providers itself and sends only the others, so
// that its share is not idle while the workers drain the queue; fewer when its
// share would not write them before its deadline; none without a budget. Every
// due provider is either refreshed by the planner or sent, never both, and the
// workers then refresh the sent ones.
func TestPlannerKeepsItsShare(t *testing.T) {
	tests := []struct {
		name     string
		shares   int
		interval time.Duration // of the budget; 0: no budget
		timeout  time.Duration // of the run, past its reserve; 0: no deadline
		wantKept int
	}{
		{"five shares", 5, time.Second, 0, 1},
		{"two shares", 2, time.Second, 0, 3},
		{"two shares, time for one write", 2, 10 * time.Second, 20 * time.Second, 1},
		{"no budget", 5, 0, 0, 0},
		{"no shares given", 0, time.Second, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			q := &fakeQueue{}
			r := w.refresher()
			r.Queue, r.Shares, r.Reserve = q, tt.shares, time.Second
			if tt.interval > 0 {
				s := newSlots(w.store, tt.interval, 0)
				r.Store, r.Writes = s, s
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel func()
				ctx, cancel = context.WithTimeout(ctx, r.Reserve+tt.timeout)
				defer cancel()
			}
			res, err := (&Handler{Refresher: r}).Handle(ctx, scheduled)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Counts()
			if c[StatusRefreshed] != tt.wantKept || c[StatusQueued] != 5-tt.wantKept {
				t.Fatalf("got %v, want %d refreshed by the planner and %d queued: %+v", c, tt.wantKept, 5-tt.wantKept, res.Results)
			}
			if got := w.srv.TotalRequests(); got != tt.wantKept {
				t.Errorf("got %d token requests from the planner, want %d", got, tt.wantKept)
			}
			refreshed := map[string]bool{}
			for _, o := range res.Results {
				if o.Status == StatusRefreshed {
					refreshed[o.Provider] = true
				}
			}
			for _, m := range q.last() {
				var j Job
				if err := json.Unmarshal([]byte(m.Body), &j); err != nil {
					t.Fatal(err)
				}
				if refreshed[j.Provider] {
					t.Errorf("got a job for %s, which the planner refreshed itself", j.Provider)
				}
			}
			if len(q.last()) == 0 {
				return
			}
			res, err = handle(t, r, delivery(t, "m", q.last()))
			if err != nil || res.Counts()[StatusRefreshed] != 5-tt.wantKept || len(res.BatchItemFailures) != 0 {
				t.Fatalf("workers: got %v, %+v, want the %d sent refreshed", err, res, 5-tt.wantKept)
			}
		})
	}
}
