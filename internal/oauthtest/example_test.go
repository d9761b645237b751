package oauthtest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/token-refresher/token-refresher/internal/oauthtest"
)

func Example() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	tokenURL := srv.Add(oauthtest.Provider{
		Name: "cardlytics", Dialect: oauthtest.Cardlytics,
		ClientID: "my-client", ClientSecret: "my secret",
	})
	// The first request fails with 503 and Retry-After; the next one gets a token.
	srv.SetFault("cardlytics", oauthtest.Fault{Kind: oauthtest.ServerError, Status: 503, RetryAfter: "1", Times: 1})

	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"my-client"}, "client_secret": {"my secret"}}
	for range 2 {
		resp, err := http.PostForm(tokenURL, form)
		if err != nil {
			panic(err)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int    `json:"expires_in"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("Retry-After"), tok.ExpiresIn,
			tok.AccessToken != "" && tok.AccessToken == srv.Stats("cardlytics").Issued[0])
	}
	fmt.Println(srv.Stats("cardlytics").Requests, "requests")
	// Output:
	// 503 1 0 false
	// 200  3600 true
	// 2 requests
}
