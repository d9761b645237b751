// Package tokens reads the partner access tokens that Token Refresher publishes, for
// Go programs that call partner APIs, and defines the published form itself.
//
// Token Refresher is one scheduled Lambda function that keeps a fresh OAuth 2.0
// client-credentials token for every partner API and publishes each to AWS Systems
// Manager Parameter Store. A program that calls a partner reads the token from there
// instead of asking the partner's token endpoint itself: it needs no client secret,
// and the partner sees one token request per token lifetime, not one per cold start.
//
// This package imports no other package of the project, so a consumer depends on
// nothing but the published form. It is a module of its own,
// github.com/token-refresher/token-refresher/pkg/tokens, requiring the SSM client,
// golang.org/x/oauth2 and golang.org/x/sync only: a consumer does not inherit the
// refresher function's dependencies. Its release tags are its directory, pkg/tokens,
// a slash and the version (vX.Y.Z), one tag prefix per module as aws-sdk-go-v2 does
// for each service:
//
//	go get github.com/token-refresher/token-refresher/pkg/tokens@latest
//
// # The published token
//
// Each partner's token is one SecureString parameter, by default
// /token-refresher/tokens/<provider>, holding one JSON object written in one
// PutParameter, so that the access token and its expiry are always written, and read,
// together:
//
//	{"access_token":"...","token_type":"Bearer","expires_at":"2026-11-23T10:00:00Z",
//	 "issued_at":"2026-11-22T10:00:00Z","scope":"read:reports","provider":"ecard"}
//
// Times are RFC 3339 UTC. Fields may be added to this object, never removed; Parse
// ignores fields it does not know. Token is this object in Go, Token.Marshal writes it
// and Parse reads it.
//
// # Quick start
//
// Create one Source per parameter when the process starts (in a Lambda, outside the
// handler, so the cache outlives an invocation), and send the partner requests
// through a client built on it:
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	...
//	src := tokens.NewSource(ssm.NewFromConfig(cfg), "/token-refresher/tokens/ecard")
//	client := tokens.NewClient(ctx, src)
//	resp, err := client.Get("https://partner.example/api/reports")
//
// NewClient is the Transport on an http.Client, as oauth2.NewClient is for an
// oauth2.TokenSource; build the client yourself to choose its timeout or base
// transport:
//
//	client := &http.Client{Transport: &tokens.Transport{Source: src}, Timeout: 30 * time.Second}
//
// Do not use oauth2.NewClient: a Source is deliberately not an oauth2.TokenSource,
// because oauth2.NewClient would wrap it in oauth2.ReuseTokenSource, which keeps
// each token until it expires and never sees a 401, so a token the partner refused
// would be sent until its expiry. Ask a Source for a token directly with
// TokenContext; a library that insists on an oauth2.TokenSource gets one from
// Source.TokenSource, without the 401 rule.
//
// # Caching and the margin
//
// A Source reads the parameter on first use and then keeps the token in memory. It
// reads again when the token is within the margin of its expiry (DefaultMargin, one
// minute; WithMargin changes it: make it at least as long as your slowest request),
// or after Invalidate. The refresher publishes a successor long before that (by
// default more than 10 minutes before expiry), so the re-read finds the new token.
//
// However many goroutines ask at once, a Source makes one read, bounded by
// DefaultTimeout (WithTimeout changes it); a caller whose context ends stops waiting
// without cancelling the read for the others. When a read fails while the cached
// token is still valid, the cached token is returned without an error, and the Source
// waits a few seconds before it reads again, so an SSM outage does not turn every
// request into a GetParameter call. A consumer keeps working through an SSM outage
// for as long as its token is valid.
//
// Transport adds the 401 rule: when the partner answers 401, the parameter is read
// again (the partner may have revoked the token early, when the refresher obtained its
// successor); only if it now holds a different token is the request sent once more,
// with that token. A request with a body is retried only when the body can be
// produced again (req.GetBody, as http.NewRequest sets for in-memory bodies). Many
// requests failing with the same token cause one read, and once that read found the
// same refused token, further 401s with it cause no read for the quiet period
// (DefaultQuietPeriod, five seconds; WithQuietPeriod changes it), so a partner that
// refuses every request does not turn each one into a GetParameter call.
//
// # When the partner refuses the latest token
//
// If the re-read finds the same token, the partner refused the latest published one
// (revoked early, a partner-side incident) and no consumer can do better until the
// refresher gets a new one. WithRotation lets the Source ask for it: it sends the
// refresher function a conditional rotation for the refused token's fingerprint,
//
//	{"action":"rotate","providers":["ecard"],"if_token":"c7798e96"}
//
// polls the parameter with growing delays until the successor is published, for at
// most the rotation wait (DefaultRotationWait; WithRotationWait changes it) and the
// request's context, and Transport retries the request once with it. Concurrent
// requests refused with one token share one rotation and one wait; the refresher
// makes one token request for any number of such events, from however many
// consumers. A Rotator sends the event; in a Lambda, an asynchronous invoke of the
// refresher function:
//
//	lc := lambda.NewFromConfig(cfg)
//	rotate := tokens.RotatorFunc(func(ctx context.Context, r tokens.Rotation) error {
//		payload, err := json.Marshal(r)
//		if err != nil {
//			return err
//		}
//		_, err = lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(refresher),
//			InvocationType: types.InvocationTypeEvent, Payload: payload})
//		return err
//	})
//	src := tokens.NewSource(ssm.NewFromConfig(cfg), param, tokens.WithRotation(rotate))
//
// This package does not import the Lambda client, so consumers that do not rotate
// do not depend on it; examples/consumer-go is a whole consumer that does.
//
// # Errors
//
// TokenContext fails only when no valid token can be had, and Transport then fails
// the request with the same error. The error names the parameter and never contains
// its value. Test it with errors.Is and errors.As:
//
//   - ErrMalformed: the parameter holds something that is not a published token.
//   - ErrExpired: the parameter holds a token that has already expired. The refresher
//     has not run, or has failed, for longer than the token's lifetime; its alarms say
//     why.
//   - *types.ParameterNotFound (github.com/aws/aws-sdk-go-v2/service/ssm/types): no
//     such parameter. The refresher has never published this provider's token, or the
//     name is wrong.
//   - any other error of the SSM client, such as access denied or a timeout.
//
// # IAM
//
// The role of the program needs ssm:GetParameter on the parameter
// (arn:aws:ssm:<region>:<account>:parameter/token-refresher/tokens/<provider>). When
// the tokens are encrypted with a customer managed key rather than alias/aws/ssm, it
// also needs kms:Decrypt on that key. The refresher's stack exports a managed policy
// that grants both for all tokens: <stack>-TokenReadersPolicyArn. With WithRotation
// the role also needs lambda:InvokeFunction on the refresher function, which the
// stack's <stack>-TokenRotationRequestersPolicyArn grants.
//
// # Testing your own code
//
// A Source needs one SSM call, GetParameter, through the ParameterReader interface,
// which *ssm.Client satisfies. In tests, pass a fake that answers from a map: publish
// values with Token.Marshal, return &types.ParameterNotFound{} for a missing name,
// and move time with WithClock instead of sleeping. The package's examples use such
// a fake (memoryParameters in example_test.go).
//
// # Never log the token
//
// An access token is a credential: whoever has it can call the partner as you. Do not
// log it, put it in an error, or return it to a caller. To tell tokens apart in a
// log, use Fingerprint, the first 8 hex digits of the token's SHA-256. A Token
// formats (with fmt and log/slog) as its fingerprint, never as its access token.
package tokens
