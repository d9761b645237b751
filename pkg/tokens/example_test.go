package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/oauth2"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// memoryParameters stands in for *ssm.Client in the examples: parameter name to value.
type memoryParameters struct {
	mu     sync.Mutex
	values map[string]string
}

func (m *memoryParameters) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[*in.Name]
	if !ok {
		return nil, &types.ParameterNotFound{}
	}
	return &ssm.GetParameterOutput{Parameter: &types.Parameter{Name: in.Name, Value: &v}}, nil
}

// publish writes a token as the refresher does.
func (m *memoryParameters) publish(name, accessToken string) {
	b, err := tokens.Token{
		AccessToken: accessToken,
		TokenType:   "Bearer",
		IssuedAt:    time.Now(),
		ExpiresAt:   time.Now().Add(time.Hour),
		Provider:    "ecard",
	}.Marshal()
	if err != nil {
		panic(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.values == nil {
		m.values = map[string]string{}
	}
	m.values[name] = string(b)
}

func ExampleNewSource() {
	params := &memoryParameters{}
	params.publish("/token-refresher/tokens/ecard", "example-access-token")

	// In a Lambda: tokens.NewSource(ssm.NewFromConfig(cfg), os.Getenv("TOKEN_PARAMETER")).
	src := tokens.NewSource(params, "/token-refresher/tokens/ecard")
	tok, err := src.TokenContext(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, tok.AccessToken, tok.Valid())
	// Output: Bearer example-access-token true
}

// Wiring a Source to the real SSM client, created once per execution environment
// (outside the handler) so the cache outlives a single invocation.
func ExampleNewSource_ssmClient() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	src := tokens.NewSource(ssm.NewFromConfig(cfg), "/token-refresher/tokens/ecard",
		tokens.WithMargin(2*time.Minute))
	client := &http.Client{Transport: &tokens.Transport{Source: src}, Timeout: 30 * time.Second}
	_ = client // use it in the handler
}

// A library that takes an oauth2.TokenSource and makes its own requests gets one
// from TokenSource. Send your own requests with NewClient, not oauth2.NewClient:
// only NewClient's client follows the 401 rule.
func ExampleSource_TokenSource() {
	params := &memoryParameters{}
	params.publish("/token-refresher/tokens/ecard", "example-access-token")

	var ts oauth2.TokenSource = tokens.NewSource(params, "/token-refresher/tokens/ecard").TokenSource()
	tok, err := ts.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Type(), tok.AccessToken)
	// Output: Bearer example-access-token
}

func ExampleTransport() {
	// The partner revoked the old token when the refresher obtained a new one.
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		fmt.Println("partner saw:", auth)
		if !strings.HasSuffix(auth, " new-token") {
			http.Error(w, "invalid_token", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer partner.Close()

	params := &memoryParameters{}
	params.publish("/token-refresher/tokens/ecard", "old-token")
	src := tokens.NewSource(params, "/token-refresher/tokens/ecard")
	client := &http.Client{Transport: &tokens.Transport{Source: src}}
	if _, err := src.TokenContext(context.Background()); err != nil { // a warm Lambda has the old token cached
		log.Fatal(err)
	}
	params.publish("/token-refresher/tokens/ecard", "new-token")

	res, err := client.Post(partner.URL, "application/json", strings.NewReader(`{"report":"daily"}`))
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	fmt.Println("status:", res.StatusCode)
	// Output:
	// partner saw: Bearer old-token
	// partner saw: Bearer new-token
	// status: 200
}

func ExampleNewClient() {
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "partner saw: ", r.Header.Get("Authorization"))
	}))
	defer partner.Close()
	params := &memoryParameters{}
	params.publish("/token-refresher/tokens/ecard", "example-access-token")

	src := tokens.NewSource(params, "/token-refresher/tokens/ecard")
	client := tokens.NewClient(context.Background(), src)
	res, err := client.Get(partner.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(string(body))
	// Output: partner saw: Bearer example-access-token
}

// Errors say what is wrong with the parameter, and errors.Is and errors.As tell the
// cases apart.
func ExampleSource_TokenContext_errors() {
	params := &memoryParameters{values: map[string]string{}}
	ctx := context.Background()

	_, err := tokens.NewSource(params, "/token-refresher/tokens/nobody").TokenContext(ctx)
	var notFound *types.ParameterNotFound
	fmt.Println("not found:", errors.As(err, &notFound))

	params.values["/token-refresher/tokens/broken"] = `{"access_token":"x"}`
	_, err = tokens.NewSource(params, "/token-refresher/tokens/broken").TokenContext(ctx)
	fmt.Println("malformed:", errors.Is(err, tokens.ErrMalformed))
	// Output:
	// not found: true
	// malformed: true
}

// Log a token's fingerprint to tell tokens apart; a Token formats as it, too.
func ExampleFingerprint() {
	tok := tokens.Token{AccessToken: "example-access-token", TokenType: "Bearer", Provider: "ecard",
		IssuedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), ExpiresAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	fmt.Println(tokens.Fingerprint(tok.AccessToken))
	fmt.Println(tok)
	// Output:
	// 6753f72e
	// token{provider:ecard type:Bearer fingerprint:6753f72e issued_at:2026-11-22T10:00:00Z expires_at:2026-11-23T10:00:00Z}
}
