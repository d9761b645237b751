// Package e2e holds the end-to-end tests of the event-driven path as deployed: the
// refresher's stack in LocalStack, its function run by the host-process executor
// (localstack/hostmode), triggered by its own EventBridge rules and by invokes, and
// an example consumer Lambda reading what it publishes, all through AWS APIs. The
// tests carry the build tag "integration" and run in make test.
//
// BenchmarkAlternative, run by make bench, sets the product against what consumers
// do without it: fetch their own tokens with x/oauth2's clientcredentials on every
// cold start (docs/performance.md, "The product against its alternative").
package e2e
