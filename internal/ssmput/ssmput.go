// Package ssmput writes SSM parameters in the tier they need and reports SSM's
// refusals without the request's value.
//
// # Tiers
//
// A value over StandardLimit needs the Advanced tier, and a parameter once
// Advanced can never be Standard again: SSM refuses such a write ("can't
// downgrade"). A Tiers remembers which parameters are Advanced, from its own
// writes, from values read back (see Saw) and from that refusal, so each later
// write of those goes Advanced in one PutParameter instead of a refused Standard
// write and a second one. When the account and Region have no Standard parameter
// left, a new parameter goes Advanced rather than not at all.
//
// # Errors
//
// SSM's error messages may quote the request, value included (a validation error
// quoting Value), and the value may be a token. Put therefore returns, for an error
// from the service, only its code, its fault and the operation, with a fixed
// message: never the text the service sent.
//
// # Budget
//
// PutParameter's quota is the account's, shared with every writer in the Region:
// Budget spaces a deployment's writes out to its share of it (PUT_PARAMETER_RATE),
// rather than letting SSM throttle them and its neighbours.
package ssmput

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// StandardLimit is the largest value of a Standard-tier parameter, in bytes; larger
// values need the Advanced tier.
const StandardLimit = 4096

// AdvancedLimit is the largest value SSM stores at all, in bytes.
const AdvancedLimit = 8192

// ErrTooLarge means a value exceeds AdvancedLimit.
var ErrTooLarge = errors.New("value too large for SSM")

// PutAPI is the SSM call Put makes.
type PutAPI interface {
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
}

// Tiers remembers which parameters are Advanced. Its zero value knows none; it is
// safe for concurrent use and must not be copied after first use.
type Tiers struct {
	mu       sync.Mutex
	advanced map[string]bool
}

func (t *Tiers) mark(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.advanced == nil {
		t.advanced = map[string]bool{}
	}
	t.advanced[name] = true
}

func (t *Tiers) isAdvanced(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.advanced[name]
}

// Saw records a value read back from the named parameter: one over StandardLimit
// means the parameter is Advanced.
func (t *Tiers) Saw(name string, valueLen int) {
	if valueLen > StandardLimit {
		t.mark(name)
	}
}

// SawAdvanced records that SSM lists the named parameter in the Advanced tier.
func (t *Tiers) SawAdvanced(name string) { t.mark(name) }

// Put writes in, whose Tier it sets: Advanced when the value needs it or the
// parameter is known to be Advanced, Standard otherwise, and Advanced again when
// SSM refuses the Standard write for either reason above. log receives a warning
// for each write that goes Advanced for the first time; it may be nil.
func (t *Tiers) Put(ctx context.Context, api PutAPI, in *ssm.PutParameterInput, log *slog.Logger) (*ssm.PutParameterOutput, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := aws.ToString(in.Name)
	size := len(aws.ToString(in.Value))
	if size > AdvancedLimit {
		return nil, fmt.Errorf("write %s: %w: %d bytes, the limit is %d", name, ErrTooLarge, size, AdvancedLimit)
	}
	in.Tier = types.ParameterTierStandard
	switch {
	case t.isAdvanced(name):
		in.Tier = types.ParameterTierAdvanced
	case size > StandardLimit:
		in.Tier = types.ParameterTierAdvanced
		log.WarnContext(ctx, "value needs the Advanced parameter tier", "parameter", name, "bytes", size)
	}
	out, err := api.PutParameter(ctx, in)
	if err != nil && in.Tier == types.ParameterTierStandard {
		switch {
		case isTierDowngrade(err):
			log.WarnContext(ctx, "parameter is already in the Advanced tier; writing it as Advanced", "parameter", name)
			in.Tier = types.ParameterTierAdvanced
			out, err = api.PutParameter(ctx, in)
		case errors.As(err, new(*types.ParameterLimitExceeded)):
			// The account and Region hold 10,000 Standard parameters, the most there
			// can be: a new parameter goes to the Advanced tier (up to 100,000, billed
			// per parameter), as SSM's Intelligent-Tiering would put it.
			log.WarnContext(ctx, "no Standard parameter left in this account and Region; writing it as Advanced", "parameter", name)
			in.Tier = types.ParameterTierAdvanced
			out, err = api.PutParameter(ctx, in)
		}
	}
	if err != nil {
		return nil, Scrub(err)
	}
	if in.Tier == types.ParameterTierAdvanced {
		t.mark(name)
	}
	return out, nil
}

// isTierDowngrade recognises SSM's refusal to move an Advanced parameter back to Standard.
func isTierDowngrade(err error) bool {
	var ve smithy.APIError
	if !errors.As(err, &ve) {
		return false
	}
	msg := strings.ToLower(ve.ErrorMessage())
	return strings.Contains(msg, "advanced") && strings.Contains(msg, "standard")
}

// Scrub returns err without any text the service sent: an error from the service
// becomes an *Error with its code and fault; any other error (a cancelled context,
// a failed connection, an exhausted retry quota) carries no text of the service's
// and is returned as it is.
func Scrub(err error) error {
	var api smithy.APIError
	if err == nil || !errors.As(err, &api) {
		return err
	}
	e := &Error{Code: api.ErrorCode(), Fault: api.ErrorFault()}
	var op *smithy.OperationError
	if errors.As(err, &op) {
		e.Operation = op.Operation()
	}
	return e
}

// Error is an error from SSM with the service's message left out.
type Error struct {
	// Operation is the call refused, such as PutParameter; empty when unknown.
	Operation string
	// Code is the service's error code, such as ValidationException.
	Code string
	// Fault says whose fault the service says it was.
	Fault smithy.ErrorFault
}

// fixedMessage stands in for the service's message.
const fixedMessage = "SSM refused the request (its message is left out: it may quote the value)"

func (e *Error) Error() string {
	op := e.Operation
	if op == "" {
		op = "SSM"
	}
	return op + ": " + e.Code + ": " + fixedMessage
}

// ErrorCode returns the service's error code, so that an *Error is a smithy.APIError.
func (e *Error) ErrorCode() string { return e.Code }

// ErrorMessage returns the fixed message, never the service's.
func (e *Error) ErrorMessage() string { return fixedMessage }

// ErrorFault returns whose fault the service says it was.
func (e *Error) ErrorFault() smithy.ErrorFault { return e.Fault }
