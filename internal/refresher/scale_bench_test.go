package refresher

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// BenchmarkScale is the simulation behind `make bench-large` at sizes LocalStack
// cannot hold (docs/performance.md, scaling): the real policy, with a fake clock
// and no AWS, over N = 10,000 and 100,000 providers of 1 h and 24 h tokens, all
// rotated at once and then refreshed by the schedule every 5 minutes, writing at
// PutParameter quotas Q = 3 and 10 a second in both modes:
//
//   - single: one invocation a run, writing for the default timeout less the
//     deadline reserve (115 s) at the whole budget Q;
//   - fanout: 4 workers writing all the time at 4/5 of Q (WORKER_CONCURRENCY 4:
//     each worker's share is Q/5), and the planner at the last fifth for the part
//     of each run it plans its own writes on (keepSlack of 115 s; see keep).
//
// It prints, per case, the steady write rate and the most writes one run needs,
// the time the rotation takes to drain at the budget (given up after one token
// lifetime), and the AWS and KMS calls of a steady run from the calls the
// LocalStack benchmarks count per page, batch and provider; then the largest N each
// case serves: found by simulation, a rotation of all drained within one lifetime
// and every run after it keeping up.
func BenchmarkScale(b *testing.B) {
	for range b.N {
		for _, n := range []int{10000, 100000} {
			for _, life := range []time.Duration{time.Hour, 24 * time.Hour} {
				free := simulateRuns(n, life, 1e6, n, simSpan(life), 0)
				steady := steadyFrom(free, life)
				most, rate := free.most(steady), free.rate(steady)
				due := rate * DefaultPeriod.Seconds()
				fmt.Printf("bench: scale providers=%d lifetime=%s steady_put_per_s=%.2f most_writes_in_a_run=%d mean_due_per_run=%.0f\n",
					n, life, rate, most, due)
				for _, mode := range []string{"single", "fanout"} {
					c := callsPerRun(mode, n, int(math.Round(due)))
					fmt.Printf("bench: scale providers=%d lifetime=%s mode=%s aws_calls_per_run=%d (%s) kms_per_run=%d\n",
						n, life, mode, c.total(), c.describe(), c.kms)
					for _, q := range []float64{3, 10} {
						budget, perRun := modeBudget(mode, q)
						s := simulateRuns(n, life, budget, perRun, simSpan(life), life)
						keeps := serves(s, life, perRun)
						drain := "not within " + life.String()
						if s.drained >= 0 {
							drain = s.drain.Round(time.Second).String()
						}
						fmt.Printf("bench: scale providers=%d lifetime=%s mode=%s quota=%g writes_per_run_at_most=%d rotate_all_drain=%s keeps_up=%v\n",
							n, life, mode, q, perRun, drain, keeps)
						if n == 100000 {
							largest(b, life, mode, q, most, n)
						}
					}
				}
			}
		}
	}
	b.ReportMetric(0, "ns/op")
}

// largest prints the largest N a case serves: a rotation of all drains at the
// budget within one token lifetime, after which every run writes what is due and
// no token is late. It searches by simulation between 0 and the budget's writes a
// run over the most writes a run needed per provider at measured, to 1%.
func largest(b *testing.B, life time.Duration, mode string, q float64, most, measured int) {
	b.Helper()
	budget, perRun := modeBudget(mode, q)
	lo, hi := 0, perRun*measured/most+1
	var best simulation
	for hi-lo > max(lo/100, 1) {
		mid := (lo + hi) / 2
		if s := simulateRuns(mid, life, budget, perRun, simSpan(life), life); serves(s, life, perRun) {
			lo, best = mid, s
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		b.Errorf("lifetime %s, %s, Q = %g: no N served", life, mode, q)
		return
	}
	fmt.Printf("bench: scale largest lifetime=%s mode=%s quota=%g providers=%d steady_put_per_s=%.2f most_writes_in_a_run=%d of %d rotate_all_drain=%s\n",
		life, mode, q, lo, best.rate(steadyFrom(best, life)), best.most(steadyFrom(best, life)), perRun, best.drain.Round(time.Second))
}

// serves says whether a simulation drained its rotation, kept up in every run
// after it, and published no token late.
func serves(s simulation, life time.Duration, perRun int) bool {
	if s.drained < 0 || len(s.late) > 0 {
		return false
	}
	for _, left := range s.backlog[s.drained:] {
		if left > 0 {
			return false
		}
	}
	return s.most(steadyFrom(s, life)) <= perRun
}

// modeBudget is the write rate and the most writes a run of one mode makes at
// quota q: single, one invocation writing for 115 s of a 120 s timeout; fanout,
// four workers at a fifth of q each, all the time, and the planner at its fifth
// for keepSlack of its 115 s.
func modeBudget(mode string, q float64) (float64, int) {
	if mode == "single" {
		return q, int(q * 115)
	}
	perRun := q*4/5*DefaultPeriod.Seconds() + q/5*115*keepSlack
	return perRun / DefaultPeriod.Seconds(), int(perRun)
}

// simSpan is long enough for a drain of up to one lifetime and three cycles after it.
func simSpan(life time.Duration) time.Duration { return 4*life + time.Hour }

// steadyFrom is the first run of the steady state: two cycles after the drain,
// when the tokens issued together have fallen into their providers' slots.
func steadyFrom(s simulation, life time.Duration) int {
	if s.drained < 0 {
		return len(s.writes)
	}
	return s.drained + 2*int(life/DefaultPeriod)
}

// runCalls are the AWS calls of one scheduled run with due of n providers due, as
// the LocalStack benchmarks count them: per fifty tokens described (the decision
// is made from the parameters' metadata, decrypting nothing), per batch of twenty
// secrets, of ten health records, of eight jobs, per token written.
type runCalls struct {
	byOp map[string]int
	kms  int // Encrypt of every token written; no token is read with decryption
}

func callsPerRun(mode string, n, due int) runCalls {
	ceil := func(a, b int) int { return (a + b - 1) / b }
	c := runCalls{byOp: map[string]int{"S3.GetObject": 1, "SSM.GetParameter": 1, "SSM.PutParameter": due + 1}}
	switch mode {
	case "single":
		c.byOp["SSM.DescribeParameters"] = ceil(n, 50)
		c.byOp["SSM.GetParameters"] = ceil(due, 10) // health records
		c.byOp["SecretsManager.BatchGetSecretValue"] = ceil(due, 20)
	case "fanout":
		batches := ceil(due, 8)
		c.byOp["SSM.DescribeParameters"] = ceil(n, 50) + batches // the planner's targets; each batch's tokens
		c.byOp["SSM.GetParameters"] = batches                    // each batch's health records
		c.byOp["SQS.SendMessageBatch"] = ceil(due, 10)
		c.byOp["SecretsManager.BatchGetSecretValue"] = batches
		c.byOp["S3.GetObject"] += batches
	}
	c.kms = due
	return c
}

func (c runCalls) total() int {
	t := 0
	for _, v := range c.byOp {
		t += v
	}
	return t
}

func (c runCalls) describe() string {
	var out string
	for _, op := range []string{"S3.GetObject", "SSM.GetParameter", "SSM.DescribeParameters", "SSM.GetParameters", "SecretsManager.BatchGetSecretValue", "SQS.SendMessageBatch", "SSM.PutParameter"} {
		if v, ok := c.byOp[op]; ok {
			out += fmt.Sprintf(" %s=%d", op, v)
		}
	}
	return out[1:]
}
