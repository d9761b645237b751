package ssmput

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
)

func TestScrub(t *testing.T) {
	quoting := &smithy.OperationError{ServiceID: "SSM", OperationName: "PutParameter", Err: &smithy.GenericAPIError{
		Code: "ValidationException", Message: "Value 'the-token' at 'value' failed to satisfy constraint", Fault: smithy.FaultClient}}
	got := Scrub(fmt.Errorf("wrapped: %w", quoting))
	var e *Error
	if !errors.As(got, &e) || e.Operation != "PutParameter" || e.Code != "ValidationException" || e.Fault != smithy.FaultClient {
		t.Fatalf("got %#v, want the operation, code and fault kept", got)
	}
	if strings.Contains(got.Error(), "the-token") {
		t.Errorf("got %q, which quotes the value", got)
	}
	var api smithy.APIError
	if !errors.As(got, &api) || api.ErrorCode() != "ValidationException" {
		t.Errorf("got %v, want a smithy.APIError with the code", got)
	}
	// Errors that carry no text of the service's stay as they are.
	for _, err := range []error{nil, context.Canceled, fmt.Errorf("send: %w", context.DeadlineExceeded)} {
		if got := Scrub(err); got != err {
			t.Errorf("Scrub(%v) = %v, want it unchanged", err, got)
		}
	}
}
