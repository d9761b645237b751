package localaws

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go/middleware"
)

// Calls counts the AWS API calls made through the clients it is attached to, by
// "Service.Operation" (e.g. "SSM.GetParametersByPath"). Counting inside the SDK
// sees every call, retries of one call excepted. It also counts the SecureString
// values SSM decrypted for those calls (Decrypted). It is safe for concurrent use.
//
// Attach it to a configuration, before clients are made from it:
//
//	cfg.APIOptions = append(cfg.APIOptions, calls.Middleware)
type Calls struct {
	mu        sync.Mutex
	n         map[string]int
	decrypted int
}

// Middleware adds the counter to an SDK middleware stack.
func (c *Calls) Middleware(st *middleware.Stack) error {
	return st.Initialize.Add(middleware.InitializeMiddlewareFunc("localaws.Calls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			key := awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
			c.mu.Lock()
			if c.n == nil {
				c.n = map[string]int{}
			}
			c.n[key]++
			c.mu.Unlock()
			out, md, err := next.HandleInitialize(ctx, in)
			if n := decrypted(in.Parameters, out.Result); n > 0 {
				c.mu.Lock()
				c.decrypted += n
				c.mu.Unlock()
			}
			return out, md, err
		}), middleware.Before)
}

// decrypted counts the SecureString values an SSM call's output holds when the
// call asked for decryption: on AWS, each is one KMS Decrypt request made by SSM
// (LocalStack decrypts inside itself, so the count is taken here).
func decrypted(in, out any) int {
	var params []types.Parameter
	switch in := in.(type) {
	case *ssm.GetParameterInput:
		if o, ok := out.(*ssm.GetParameterOutput); ok && aws.ToBool(in.WithDecryption) && o.Parameter != nil {
			params = []types.Parameter{*o.Parameter}
		}
	case *ssm.GetParametersInput:
		if o, ok := out.(*ssm.GetParametersOutput); ok && aws.ToBool(in.WithDecryption) {
			params = o.Parameters
		}
	case *ssm.GetParametersByPathInput:
		if o, ok := out.(*ssm.GetParametersByPathOutput); ok && aws.ToBool(in.WithDecryption) {
			params = o.Parameters
		}
	case *ssm.GetParameterHistoryInput:
		if o, ok := out.(*ssm.GetParameterHistoryOutput); ok && aws.ToBool(in.WithDecryption) {
			n := 0
			for _, h := range o.Parameters {
				if h.Type == types.ParameterTypeSecureString {
					n++
				}
			}
			return n
		}
	}
	n := 0
	for _, p := range params {
		if p.Type == types.ParameterTypeSecureString {
			n++
		}
	}
	return n
}

// Decrypted returns the SecureString values read with decryption: the KMS Decrypt
// requests SSM makes for them on AWS.
func (c *Calls) Decrypted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.decrypted
}

// Count returns the calls of one "Service.Operation".
func (c *Calls) Count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[op]
}

// Service returns the calls to one service (its SDK service id, e.g. "SSM", "Secrets Manager").
func (c *Calls) Service(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for k, v := range c.n {
		if len(k) > len(id) && k[:len(id)+1] == id+"." {
			total += v
		}
	}
	return total
}

// Total returns all calls counted.
func (c *Calls) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for _, v := range c.n {
		total += v
	}
	return total
}

// Reset forgets the counts.
func (c *Calls) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n, c.decrypted = nil, 0
}
