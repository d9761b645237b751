package localaws

import (
	"context"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Calls counts the AWS API calls made through the clients it is attached to, by
// "Service.Operation" (e.g. "SSM.GetParametersByPath"). Counting inside the SDK
// sees every call, retries of one call excepted. It is safe for concurrent use.
//
// Attach it to a configuration, before clients are made from it:
//
//	cfg.APIOptions = append(cfg.APIOptions, calls.Middleware)
type Calls struct {
	mu sync.Mutex
	n  map[string]int
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
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
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
	c.n = nil
}
