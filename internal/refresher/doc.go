// Package refresher keeps every provider's published token fresh: it decodes the
// function's events, decides with the refresh Policy which tokens are due, obtains
// new ones through the token endpoint client and publishes them, one provider's
// failure never stopping another's.
//
// # When a token is refreshed
//
// A token is due when less than its refresh window is left of it, when it is older
// than the provider's max_age, or when there is none. The window is refresh_before
// when configured, else the larger of 15 minutes and 20% of the token's lifetime,
// plus a small per-provider jitter; its floor grows with the schedule's period
// (Policy.MinWindow). Why the floor is two schedule periods plus the consumers'
// cache is in docs/design.md ("Why 15 minutes"), the one place it is explained.
//
// The jitter is derived from the provider's name and the token's issue time, so
// every run computes the same due time for the same token.
//
// # One clock
//
// A run tells time by Refresher.Now alone: it hands that clock to the secret
// source (secrets.WithClock) and the token client (oauth.WithClock) on every call,
// rather than each keeping a clock field of its own, because a token's issue time,
// the secret cache's age and the refresh policy must agree, and three clocks set
// separately could be set apart.
package refresher
