package oauth

// Redact exposes the redactor to the external tests, which compare it against
// oauthtest.SecretForms.
func Redact(cred Credentials, s string) string { return newRedactor(cred).redact(s) }
