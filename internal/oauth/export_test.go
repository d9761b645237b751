package oauth

// Redact exposes the redactor to the external tests, which compare it against
// oauthtest.SecretForms.
func Redact(cred Credentials, s string) string { return newRedactor(cred).redact(s) }

// Sanitize exposes the one step every error of the client passes through.
func Sanitize(err error, cred Credentials) error { return sanitize(err, cred) }

// The sentinels and limits the external tests check against.
var (
	ErrBadResponse     = errBadResponse
	ErrInsecureURL     = errInsecureURL
	ErrNoExpiry        = errNoExpiry
	ErrUnreachable     = errUnreachable
	ErrVerification    = errVerification
	DefaultMaxAttempts = defaultMaxAttempts
	MaxErrorLen        = maxErrorLen
)

// RedactMade exposes the redactor with what was made for a call (assertions, signatures).
func RedactMade(cred Credentials, s string, made ...string) string {
	return newRedactor(cred, made...).redact(s)
}
