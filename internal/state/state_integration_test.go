//go:build integration

package state

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/token-refresher/token-refresher/internal/awstest"
)

// TestIntegrationState: health records and the run record against SSM's own
// versions, batched reads and paths.
func TestIntegrationState(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	s := &Store{API: ssm.NewFromConfig(cfg), Prefix: awstest.Parameters(t, cfg, "state-") + "/state"}
	t0 := time.Now().UTC().Truncate(time.Second)

	var names []string
	for i := range 12 { // two GetParameters calls
		name := string(rune('a'+i)) + "-provider"
		names = append(names, name)
		if i%2 == 0 {
			if err := s.PutHealth(ctx, Health{Provider: name, State: Failing, Since: t0, ConsecutiveFailures: i}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := s.Health(ctx, names)
	if err != nil || len(got) != 6 || got["c-provider"].ConsecutiveFailures != 2 || got["c-provider"].State != Failing {
		t.Fatalf("Health: got %d records (c-provider %+v), error %v; want 6, c-provider failing with 2 failures, no error", len(got), got["c-provider"], err)
	}
	all, err := s.AllHealth(ctx)
	if err != nil || len(all) != 6 {
		t.Fatalf("AllHealth: got %d records, error %v; want 6, no error", len(all), err)
	}

	if r, v, err := s.Run(ctx); err != nil || v != 0 || !same(r, Run{}) {
		t.Fatalf("missing record: got %+v at version %d, error %v; want a zero record at version 0", r, v, err)
	}
	first := Run{Registry: "fp", NextDue: t0.Add(time.Hour), MinExpiry: t0.Add(2 * time.Hour), FullRead: t0}
	if err := s.PutRun(ctx, first); err != nil {
		t.Fatal(err)
	}
	if r, v, err := s.Run(ctx); err != nil || v != 1 || !same(r, first) {
		t.Fatalf("first record: got %+v at version %d, error %v; want %+v at version 1", r, v, err, first)
	}
	// Another run writes between this run's read and its write (slipped in through
	// a store that writes on every read): the earlier due time survives.
	other := Run{Registry: "fp", NextDue: t0.Add(10 * time.Minute), MinExpiry: t0.Add(3 * time.Hour), FullRead: t0.Add(time.Second),
		Rotations: []Rotation{{At: t0, All: true}}}
	late := Run{Registry: "fp", NextDue: t0.Add(time.Hour), MinExpiry: t0.Add(2 * time.Hour), FullRead: t0.Add(2 * time.Second)}
	racing := &Store{API: &writeOnRead{API: s.API, write: func() { _ = (&Store{API: s.API, Prefix: s.Prefix}).PutRun(ctx, other) }}, Prefix: s.Prefix}
	if err := racing.PutRun(ctx, late); err != nil {
		t.Fatal(err)
	}
	r, _, err := s.Run(ctx)
	if err != nil || !r.NextDue.Equal(other.NextDue) || !r.MinExpiry.Equal(late.MinExpiry) || !r.FullRead.Equal(other.FullRead) {
		t.Fatalf("run record: got %+v, error %v; want next due %s, min expiry %s, full read %s", r, err, other.NextDue, late.MinExpiry, other.FullRead)
	}
	if len(r.Rotations) != 1 || !r.Rotations[0].All || !r.Rotations[0].At.Equal(t0) {
		t.Fatalf("run record: got rotations %+v, want the other run's rotation of all kept", r.Rotations)
	}
}

// writeOnRead runs write once, after the first GetParameter it serves: another
// run's write between this run's read and its own.
type writeOnRead struct {
	API
	write func()
	done  bool
}

func (w *writeOnRead) GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	out, err := w.API.GetParameter(ctx, in, optFns...)
	if !w.done {
		w.done = true
		w.write()
	}
	return out, err
}
