package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/token-refresher/token-refresher/internal/ssmput"
)

// DefaultPrefix is where the records live when Store.Prefix is empty: beside the
// default token prefix, /token-refresher/tokens, not under it.
const DefaultPrefix = "/token-refresher/state"

// API is the part of the SSM client a Store uses.
type API interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	GetParameters(ctx context.Context, in *ssm.GetParametersInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
	GetParametersByPath(ctx context.Context, in *ssm.GetParametersByPathInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error)
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	GetParameterHistory(ctx context.Context, in *ssm.GetParameterHistoryInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterHistoryOutput, error)
}

// Store reads and writes the records. Set API; Prefix defaults to DefaultPrefix.
//
// Records are written with the tier their parameter has, Advanced when SSM has no
// Standard parameter left (see package ssmput), and an error SSM returns for a
// write keeps its code, not its message.
type Store struct {
	API    API
	Prefix string

	// tiers knows which records are Advanced.
	tiers ssmput.Tiers
}

// namesPerCall is GetParameters' limit.
const namesPerCall = 10

func (s *Store) prefix() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return "/" + strings.Trim(s.Prefix, "/")
}

// HealthParameter is the parameter of a provider's Health.
func (s *Store) HealthParameter(provider string) string { return s.prefix() + "/health/" + provider }

// RunParameter is the parameter of the Run record.
func (s *Store) RunParameter() string { return s.prefix() + "/run" }

// Health reads the records of the named providers, ten to a call; a provider
// without a record is absent from the map. A record that cannot be decoded counts
// as absent: it is replaced at the provider's next change.
func (s *Store) Health(ctx context.Context, providers []string) (map[string]Health, error) {
	out := map[string]Health{}
	for chunk := range slices.Chunk(providers, namesPerCall) {
		names := make([]string, len(chunk))
		for i, p := range chunk {
			names[i] = s.HealthParameter(p)
		}
		resp, err := s.API.GetParameters(ctx, &ssm.GetParametersInput{Names: names})
		if err != nil {
			return nil, fmt.Errorf("read health records: %w", err)
		}
		for _, prm := range resp.Parameters {
			if h, ok := s.health(prm); ok {
				out[h.Provider] = h
			}
		}
	}
	return out, nil
}

// AllHealth reads every health record under the prefix.
func (s *Store) AllHealth(ctx context.Context) (map[string]Health, error) {
	out := map[string]Health{}
	p := ssm.NewGetParametersByPathPaginator(s.API, &ssm.GetParametersByPathInput{
		Path: aws.String(s.prefix() + "/health"), MaxResults: aws.Int32(namesPerCall),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read health records: %w", err)
		}
		for _, prm := range page.Parameters {
			if h, ok := s.health(prm); ok {
				out[h.Provider] = h
			}
		}
	}
	return out, nil
}

// health decodes a health record; ok is false for one that cannot be decoded and
// for one whose provider is not the one its parameter is named for, which a writer
// other than PutHealth put there and which must not stand for another provider.
func (s *Store) health(prm types.Parameter) (h Health, ok bool) {
	s.tiers.Saw(aws.ToString(prm.Name), len(aws.ToString(prm.Value)))
	if json.Unmarshal([]byte(aws.ToString(prm.Value)), &h) != nil || h.Provider == "" {
		return Health{}, false
	}
	return h, aws.ToString(prm.Name) == s.HealthParameter(h.Provider)
}

// PutHealth writes a provider's record.
func (s *Store) PutHealth(ctx context.Context, h Health) error {
	_, err := s.put(ctx, s.HealthParameter(h.Provider), h, "Health of "+h.Provider+", recorded by token-refresher")
	return err
}

// Run reads the Run record and its version; a missing record is the zero Run at
// version 0, and so is one that cannot be decoded.
func (s *Store) Run(ctx context.Context) (Run, int64, error) {
	out, err := s.API.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(s.RunParameter())})
	var nf *types.ParameterNotFound
	if errors.As(err, &nf) {
		return Run{}, 0, nil
	}
	if err != nil {
		return Run{}, 0, fmt.Errorf("read the run record: %w", err)
	}
	var r Run
	if json.Unmarshal([]byte(aws.ToString(out.Parameter.Value)), &r) != nil {
		return Run{}, out.Parameter.Version, nil
	}
	return r, out.Parameter.Version, nil
}

// maxRunWrites bounds how often PutRun writes again after overlapping writers.
const maxRunWrites = 3

// PutRun writes the Run record of a run that read the tokens at r.FullRead.
//
// Two runs that overlap may each write a record, and either may have seen a token
// the other did not; the record must not lose the earlier due time of either. SSM
// has no conditional write, so PutRun reads the record's version first, writes, and
// when the new version is not the next one, reads the versions written in between
// (GetParameterHistory) and writes the merge of all of them, in which the earliest
// due time, expiry and full read win. Every writer checks after its own write, so
// the last one has folded in all the others.
func (s *Store) PutRun(ctx context.Context, r Run) error {
	_, after, err := s.Run(ctx)
	if err != nil {
		return err
	}
	for range maxRunWrites {
		version, err := s.put(ctx, s.RunParameter(), r, "Last full run of token-refresher: lets idle runs end early")
		if err != nil {
			return err
		}
		if version == after+1 {
			return nil // nobody wrote in between
		}
		others, err := s.runsBetween(ctx, after, version)
		if err != nil {
			return err
		}
		merged := r
		for _, o := range others {
			merged = merge(merged, o)
		}
		if same(merged, r) {
			return nil
		}
		r, after = merged, version
	}
	return nil
}

// runsBetween reads the Run records written after version after and before version
// before.
func (s *Store) runsBetween(ctx context.Context, after, before int64) ([]Run, error) {
	var out []Run
	p := ssm.NewGetParameterHistoryPaginator(s.API, &ssm.GetParameterHistoryInput{
		Name: aws.String(s.RunParameter()), MaxResults: aws.Int32(50),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the run record's history: %w", err)
		}
		for _, h := range page.Parameters {
			var r Run
			if h.Version > after && h.Version < before && json.Unmarshal([]byte(aws.ToString(h.Value)), &r) == nil {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// merge is what two overlapping runs' records agree on: the earlier due time,
// expiry and full read, since either may have seen a token the other did not; a
// zero NextDue (read everything) wins, and records of two registries leave none
// current.
func merge(a, b Run) Run {
	out := a
	if a.Registry != b.Registry {
		out.Registry = ""
	}
	if b.FullRead.Before(out.FullRead) {
		out.FullRead = b.FullRead
	}
	if a.NextDue.IsZero() || b.NextDue.IsZero() {
		out.NextDue = time.Time{}
	} else if b.NextDue.Before(a.NextDue) {
		out.NextDue = b.NextDue
	}
	// A zero MinExpiry means no token is known: the other one's stands.
	if out.MinExpiry.IsZero() || !b.MinExpiry.IsZero() && b.MinExpiry.Before(out.MinExpiry) {
		out.MinExpiry = b.MinExpiry
	}
	// A rotation either still waits for stays: the next full read drops it once
	// its providers' tokens show it done, and keeping it longer rotates nothing twice.
	out.Rotations = slices.Clone(a.Rotations)
	for _, rot := range b.Rotations {
		if !slices.ContainsFunc(out.Rotations, func(o Rotation) bool { return sameRotation(o, rot) }) {
			out.Rotations = append(out.Rotations, rot)
		}
	}
	return out
}

// same says whether two records say the same.
func same(a, b Run) bool {
	return a.Registry == b.Registry && a.NextDue.Equal(b.NextDue) && a.MinExpiry.Equal(b.MinExpiry) &&
		a.FullRead.Equal(b.FullRead) && slices.EqualFunc(a.Rotations, b.Rotations, sameRotation)
}

func sameRotation(a, b Rotation) bool {
	return a.At.Equal(b.At) && a.All == b.All && slices.Equal(a.Providers, b.Providers)
}

func (s *Store) put(ctx context.Context, name string, v any, description string) (int64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	out, err := s.tiers.Put(ctx, s.API, &ssm.PutParameterInput{
		Name:        aws.String(name),
		Value:       aws.String(string(b)),
		Type:        types.ParameterTypeString,
		Overwrite:   aws.Bool(true),
		Description: aws.String(description),
	}, nil)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", name, err)
	}
	return out.Version, nil
}
