// Package refresher keeps every provider's published token fresh: it decodes the
// function's events, decides with the refresh Policy which tokens are due, obtains
// new ones through the token endpoint client and publishes them, one provider's
// failure never stopping another's.
//
// # When a token is refreshed
//
// A token is due when less than its refresh window is left of it, when it is older
// than the provider's max_age, or when there is none. The window is refresh_before
// when configured, else the larger of 15 minutes and 20% of the token's lifetime:
// a 1 h token is refreshed with 15 minutes left, a 24 h token with about 4.8 h left,
// a one-year token with about 73 days left.
//
// The 15-minute floor is two schedule periods plus the consumers' cache:
//
//	window ≥ 2 × period + cache = 2 × 5 min + 5 min = 15 min
//
// The schedule runs every period P (5 minutes). The first run that finds a token
// due finds it with more than window − P left. Should that run fail (the provider
// is down, the run is throttled), the next one, P later, still finds more than
// window − 2P left. Consumers that read through the AWS Parameters and Secrets
// Lambda extension keep a value for up to its TTL C (300 s by default), so they may
// go on using the old token for C after the new one is published: it then still has
// more than window − 2P − C ≥ 0 left. A per-provider jitter, always positive,
// makes the window strictly larger than that floor, and spreads tokens that were
// issued in the same run over later runs, so they do not all come due together.
// With a longer schedule (SCHEDULE_EXPRESSION), the floor grows to match.
//
// The jitter is derived from the provider's name and the token's issue time, so
// every run computes the same due time for the same token.
package refresher
