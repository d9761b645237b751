package oauthtest

import (
	"fmt"
	"net/url"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

// Dialect is one provider's variant of the OAuth 2.0 client-credentials grant, as
// described by the provider document of one of the five seed providers (seeds 000 to
// 004, the partners the product was built for; docs/configuration.md lists them).
// Each is served at POST {Server.URL}/{name}/token exactly as its document shows:
//
//	dialect       seed  client auth (registry)  request body                      required header
//	ecard         000   client_secret_post      JSON {client_id,client_secret,    Content-Type: application/json
//	                                            grant_type} (+ optional scope)    (charset=utf-8 optional)
//	booking       001   client_secret_post      JSON, as ecard                    Accept: application/json too
//	opencard      002   client_secret_post      form; scope REQUIRED,             Content-Type:
//	                                            space-separated                   application/x-www-form-urlencoded
//	cardlytics    003   client_secret_post      form                              (same)
//	checkissuing  004   client_secret_basic     form, grant_type only;            (same)
//	                    (form-encoded, §2.3.1)  client_id/secret in body: 400
//
//	dialect       success answer (key order as in the seed)                        expires_in  access_token
//	ecard         {"data":{"type":"oauth-token","attributes":{"access_token",      86400       JWT {"alg":"RS256","typ":"JWT","kid"},
//	              "token_type":"Bearer","expires_in","scope"}},"meta":{"timestamp",            claims iss, sub, scope, iat, exp, jti
//	              "request_id","version"},"jsonapi":{"version":"1.0"}}
//	              Content-Type: application/vnd.api+json
//	booking       {"token_type":"Bearer","expires_in","access_token"}              3600        JWT {"typ":"JWT","alg":"RS256"}, claims
//	                                                                                           aud, jti, iat, nbf, exp, sub, scopes,
//	                                                                                           user_id, partner_id, is_test; iat/nbf/exp
//	                                                                                           FRACTIONAL as in the seed: 1710220031.583112
//	opencard      as booking                                                       31536000    JWT as booking without user_id, partner_id,
//	                                                                                           is_test; integer iat/nbf/exp
//	cardlytics    {"access_token","expires_in","token_type":"Bearer"}              3600        opaque, 43 base64url characters
//	checkissuing  as booking                                                       3600        opaque, 40 lower-case hex digits
//
//	dialect       error answer (400 malformed, 401 bad credentials)
//	ecard         JSON:API {"errors":[{"status":"401","title":"Unauthorized","detail":"..."}]}
//	booking       RFC 6749 {"error":"invalid_client","error_description":"..."}; 406 when Accept lacks application/json
//	opencard      RFC 6749; 400 invalid_scope when scope is missing
//	cardlytics    RFC 6749
//	checkissuing  {"status":0,"errors":["Access Denied"]} for bad credentials, with WWW-Authenticate: Basic;
//	              {"status":0,"errors":["<message>"]} for the other errors
//
// All dialects answer only POST (405 with Allow: POST otherwise) and refuse a query
// string (400), a body over 1 MiB (413) and a grant_type other than client_credentials
// (400 unsupported_grant_type; missing: invalid_request). Form bodies may have a charset
// of utf-8 and must not repeat a parameter (RFC 6749 §3.2). Body dialects refuse an
// extra Authorization: Basic header (one client authentication method only). In JSON
// bodies the fields grant_type, client_id, client_secret and scope must be strings;
// other fields are ignored. JSON answers carry Cache-Control: no-store, and
// Content-Type application/json except for ecard.
//
// Scope: when Provider.Scope is set, every requested scope must be one of its
// space-separated scopes (else 400 invalid_scope), and a request without scope is
// granted Provider.Scope; scopes must be separated by single spaces. ecard echoes the
// granted scope (by default the seed's "read:reports read:transactions export:reports");
// booking and opencard put it into the JWT's "scopes" claim.
type Dialect string

// The five seed dialects.
const (
	// ECard is seed 000 (eCard reporting API): JSON request, JSON:API answer, JWT, 24 h.
	ECard Dialect = "ecard"
	// Booking is seed 001 (partner booking API): JSON request with Accept: application/json, flat answer, JWT, 1 h.
	Booking Dialect = "booking"
	// OpenCard is seed 002 (OpenCard EMS): form request with a required scope, flat answer, JWT, one year.
	OpenCard Dialect = "opencard"
	// Cardlytics is seed 003: form request, flat answer, opaque token, 1 h.
	Cardlytics Dialect = "cardlytics"
	// CheckIssuing is seed 004 (Checkissuing): HTTP Basic client auth, form grant_type only,
	// flat answer, 40-hex opaque token, 1 h, errors as {"status":0,"errors":["Access Denied"]}.
	CheckIssuing Dialect = "checkissuing"
)

// Dialects returns the five dialects in seed order.
func Dialects() []Dialect {
	return []Dialect{ECard, Booking, OpenCard, Cardlytics, CheckIssuing}
}

// Endpoint returns the description of a token endpoint of dialect d at tokenURL:
// what the token client must do to get a token from it, and nothing else, so tests,
// the benchmark and the demo configure providers without a table of their own.
// It panics when d is not one of the five dialects or tokenURL is not a URL.
func (d Dialect) Endpoint(tokenURL string) oauth.Endpoint {
	sp := d.spec()
	u, err := url.Parse(tokenURL)
	if err != nil {
		panic(fmt.Sprintf("oauthtest: token URL %q: %v", tokenURL, err))
	}
	e := oauth.Endpoint{TokenURL: u, AuthMethod: oauth.ClientSecretPost, BasicEncoding: oauth.BasicForm, RequestFormat: oauth.FormRequest}
	if sp.basic {
		e.AuthMethod = oauth.ClientSecretBasic
	}
	if sp.json {
		e.RequestFormat = oauth.JSONRequest
	}
	if sp.acceptJSON {
		e.Headers = map[string]string{"Accept": "application/json"}
	}
	if sp.scopeRequired {
		e.Scope = "organizations-read organizations-write webhooks-write"
	}
	return e
}

// Lifetime is the expires_in d answers unless Provider.Lifetime overrides it.
func (d Dialect) Lifetime() time.Duration { return d.spec().lifetime }

type tokenKind int

const (
	tokenECardJWT    tokenKind = iota // {"alg":"RS256","typ":"JWT","kid":...}, integer claims
	tokenPassportJWT                  // {"typ":"JWT","alg":"RS256"}, Laravel Passport claims
	tokenOpaque                       // 43 base64url characters
	tokenHex40                        // 40 lower-case hex digits
)

type errorShape int

const (
	errorsJSONAPI errorShape = iota // {"errors":[{"status","title","detail"}]}
	errorsRFC6749                   // {"error","error_description"}
	errorsStatus0                   // {"status":0,"errors":["..."]}
)

type dialectSpec struct {
	json          bool // request body is JSON, else form
	basic         bool // client credentials in an HTTP Basic header, else in the body
	acceptJSON    bool // request must carry Accept: application/json
	scopeRequired bool // request must carry a non-empty scope
	lifetime      time.Duration
	token         tokenKind
	fractionalNum bool // JWT NumericDates with microseconds
	errors        errorShape
	defaultScope  string // granted when neither the request nor the Provider names a scope
	contentType   string // of every JSON answer
}

var specs = map[Dialect]dialectSpec{
	ECard: {
		json:         true,
		lifetime:     24 * time.Hour,
		token:        tokenECardJWT,
		errors:       errorsJSONAPI,
		defaultScope: "read:reports read:transactions export:reports",
		contentType:  "application/vnd.api+json",
	},
	Booking: {
		json:          true,
		acceptJSON:    true,
		lifetime:      time.Hour,
		token:         tokenPassportJWT,
		fractionalNum: true,
		errors:        errorsRFC6749,
		contentType:   "application/json",
	},
	OpenCard: {
		scopeRequired: true,
		lifetime:      365 * 24 * time.Hour,
		token:         tokenPassportJWT,
		errors:        errorsRFC6749,
		contentType:   "application/json",
	},
	Cardlytics: {
		lifetime:    time.Hour,
		token:       tokenOpaque,
		errors:      errorsRFC6749,
		contentType: "application/json",
	},
	CheckIssuing: {
		basic:       true,
		lifetime:    time.Hour,
		token:       tokenHex40,
		errors:      errorsStatus0,
		contentType: "application/json",
	},
}

func (d Dialect) spec() dialectSpec {
	sp, ok := specs[d]
	if !ok {
		panic(fmt.Sprintf("oauthtest: unknown dialect %q", string(d)))
	}
	return sp
}
