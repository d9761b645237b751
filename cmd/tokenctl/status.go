package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/token-refresher/token-refresher/internal/catalog"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/state"
	"github.com/token-refresher/token-refresher/internal/store"
)

// Row is one provider's line of the status table, and of its JSON.
type Row struct {
	Provider string          `json:"provider"`
	State    state.Condition `json:"state"`
	// Reason says why a provider is degraded or failing.
	Reason string `json:"reason,omitempty"`
	// Since is when the provider entered State, when the refresher recorded it.
	Since     time.Time `json:"since,omitzero"`
	Parameter string    `json:"parameter,omitempty"`
	// ExpiresAt, IssuedAt (the last success), NextRefresh and Fingerprint describe
	// the published token, from its parameter's description.
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	SecondsLeft int64     `json:"seconds_left"`
	IssuedAt    time.Time `json:"issued_at,omitzero"`
	AgeSeconds  int64     `json:"age_seconds"`
	NextRefresh time.Time `json:"next_refresh,omitzero"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	// ConsecutiveFailures, LastFailure and LastError come from the health record.
	ConsecutiveFailures int       `json:"consecutive_failures"`
	LastFailure         time.Time `json:"last_failure,omitzero"`
	LastError           string    `json:"last_error,omitempty"`
	// RotationRequestedAt is when a rotation that still waits for this provider,
	// kept in the run record, was asked for (docs/design.md, rotations that wait).
	RotationRequestedAt time.Time `json:"rotation_requested_at,omitzero"`
}

func status(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	providersFile := fs.String("providers", "", "the deployment's registry `FILE`: lists its providers even when they have no token yet")
	tokenPrefix := fs.String("token-prefix", registry.DefaultParameterPrefix, "the deployment's TOKEN_PARAMETER_PREFIX")
	statePrefix := fs.String("state-prefix", state.DefaultPrefix, "the deployment's STATE_PARAMETER_PREFIX")
	bucket := fs.String("bucket", os.Getenv("REGISTRY_BUCKET"), "the stack's registry bucket (its RegistryBucket output), whose providers are listed; -providers wins")
	key := fs.String("key", catalog.DefaultKey, "the registry's object key in -bucket")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return exitUsage
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "AWS configuration:", err)
		return exitUsage
	}
	opts := registry.Options{ParameterPrefix: *tokenPrefix}
	var reg *registry.Registry
	var rejected []registry.Rejected
	switch {
	case *providersFile != "":
		if reg, err = registry.LoadFile(*providersFile, opts); err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
	case *bucket != "":
		snap, err := (&catalog.Reader{API: catalog.NewClient(cfg), Bucket: *bucket, Key: *key, Options: opts}).Current(ctx)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		if (snap.Registry == nil || snap.Registry.Len() == 0) && len(snap.Rejected) == 0 {
			// Tokens of removed providers may remain until they expire; the stack
			// refreshes none.
			return noProviders(stdout, *asJSON)
		}
		reg, rejected = snap.Registry, snap.Rejected
	}
	api := ssm.NewFromConfig(cfg)
	infos, err := store.Describe(ctx, api, *tokenPrefix)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	health, err := (&state.Store{API: api, Prefix: *statePrefix}).AllHealth(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	st := &state.Store{API: api, Prefix: *statePrefix}
	rec, _, err := st.Run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "rotations waiting not shown:", err)
	}
	table := append(waiting(rows(time.Now(), reg, infos, health), rec.Rotations), rejectedRows(rejected)...)
	if len(table) == 0 {
		return noProviders(stdout, *asJSON)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(table); err != nil {
			return exitUsage
		}
	} else {
		printTable(stdout, time.Now(), table)
	}
	for _, r := range table {
		if r.State == state.Failing {
			return exitProblem
		}
	}
	return exitOK
}

// waiting marks the rows of providers that a rotation kept in the run record still
// waits for: their token was issued before it. A healthy one says so as its reason;
// waiting is no problem, and changes no state.
func waiting(table []Row, rotations []state.Rotation) []Row {
	for i, r := range table {
		for _, rot := range rotations {
			if !rot.Covers(r.Provider) || !r.IssuedAt.IsZero() && rot.Done(r.IssuedAt) {
				continue
			}
			if rot.At.After(r.RotationRequestedAt) {
				table[i].RotationRequestedAt = rot.At
			}
		}
		if at := table[i].RotationRequestedAt; !at.IsZero() && r.State == state.Healthy && r.Reason == "" {
			table[i].Reason = "rotation requested at " + at.UTC().Format(time.RFC3339) + ", waiting for the write budget"
		}
	}
	return table
}

// noProviders is status's answer for a deployment with no providers: a healthy
// one, not an empty table.
func noProviders(stdout io.Writer, asJSON bool) int {
	if asJSON {
		fmt.Fprintln(stdout, "[]")
	} else {
		fmt.Fprintln(stdout, "no providers")
	}
	return exitOK
}

// rows joins what the refresher recorded: the tokens' descriptions and the health
// records, for the registry's providers when there is a registry, else for every
// provider either names. A provider without a valid token is failing whatever its
// record says; one on the previous client secret is degraded.
func rows(now time.Time, reg *registry.Registry, infos map[string]store.Info, health map[string]state.Health) []Row {
	byProvider := map[string]Row{}
	for param, info := range infos {
		byProvider[info.Provider] = Row{Provider: info.Provider, Parameter: param, ExpiresAt: info.ExpiresAt,
			IssuedAt: info.IssuedAt, NextRefresh: info.RefreshAt, Fingerprint: info.Fingerprint}
	}
	var names []string
	if reg != nil {
		for _, p := range reg.Providers() {
			names = append(names, p.Name)
			if r, ok := byProvider[p.Name]; !ok || r.Parameter != p.Parameter {
				byProvider[p.Name] = Row{Provider: p.Name, Parameter: p.Parameter}
			}
		}
	} else {
		for name := range byProvider {
			names = append(names, name)
		}
		for name := range health {
			if _, ok := byProvider[name]; !ok {
				names = append(names, name)
			}
		}
		slices.Sort(names)
	}
	out := make([]Row, 0, len(names))
	for _, name := range names {
		r := byProvider[name]
		r.Provider = name
		h, recorded := health[name]
		r.ConsecutiveFailures, r.LastFailure, r.LastError = h.ConsecutiveFailures, h.LastFailure, h.LastError
		r.State, r.Reason, r.Since = state.Healthy, "", h.Since
		if recorded {
			r.State, r.Reason = h.State, h.Reason
		}
		info := infos[r.Parameter]
		switch {
		case r.ExpiresAt.IsZero() || !now.Before(r.ExpiresAt):
			r.State = state.Failing
			if r.ExpiresAt.IsZero() {
				r.Reason = "no token is published"
			} else {
				r.Reason = "the published token has expired"
			}
		case r.State == state.Failing:
			// A valid token appeared since the record said failing.
			r.State, r.Reason = state.Degraded, "the last refresh failed; the published token is valid"
		case info.PreviousSecret:
			r.State, r.Reason = state.Degraded, "running on the previous client secret (AWSPREVIOUS): the current one was refused"
		}
		if !r.ExpiresAt.IsZero() {
			r.SecondsLeft = int64(r.ExpiresAt.Sub(now).Seconds())
		}
		if !r.IssuedAt.IsZero() {
			r.AgeSeconds = int64(now.Sub(r.IssuedAt).Seconds())
		}
		out = append(out, r)
	}
	return out
}

// rejectedRows are the stored registry's entries that do not load (edited by
// hand, say): the stack fails each at every run, so status does too, with the
// loader's reason, which names the field and the line.
func rejectedRows(rejected []registry.Rejected) []Row {
	out := make([]Row, 0, len(rejected))
	for _, r := range rejected {
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("providers[%d]", r.Index)
		}
		out = append(out, Row{Provider: name, State: state.Failing, Reason: "registry entry cannot be loaded: " + r.Err.Error()})
	}
	return out
}

func printTable(w io.Writer, now time.Time, table []Row) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tSTATE\tEXPIRES (UTC)\tLEFT\tAGE\tNEXT REFRESH\tFAILURES\tLAST FAILURE\tREASON")
	for _, r := range table {
		next := "-"
		if !r.NextRefresh.IsZero() {
			next = "in " + human(r.NextRefresh.Sub(now))
			if !now.Before(r.NextRefresh) {
				next = "due"
			}
		}
		reason := r.Reason
		if r.LastError != "" && r.State != state.Healthy {
			reason = strings.TrimSpace(reason + ": " + r.LastError)
		}
		printRow(tw, safe(r.Provider, maxName), safe(string(r.State), maxName), stampOr(r.ExpiresAt),
			humanOr(r.ExpiresAt, r.ExpiresAt.Sub(now)), humanOr(r.IssuedAt, now.Sub(r.IssuedAt)), next,
			strconv.Itoa(r.ConsecutiveFailures), stampOr(r.LastFailure), dash(safe(reason, maxField)))
	}
	tw.Flush()
}

func stampOr(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func humanOr(t time.Time, d time.Duration) string {
	if t.IsZero() {
		return "-"
	}
	return human(d)
}

// human writes a duration as an operator reads it: 47m, 23h12m, 364d.
func human(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%s%ds", sign, int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%s%dm", sign, int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%s%dh%02dm", sign, int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%s%dd", sign, int(d.Hours()/24))
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
