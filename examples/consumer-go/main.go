// Command consumer-go is a consumer Lambda: it reads its provider's token from SSM
// Parameter Store with pkg/tokens, as any Lambda that calls a partner API would,
// and calls the partner's API with it. Each invocation makes one call and returns
// the partner's status, its body and the token's fingerprint, never the token.
//
// Configuration (environment, set by template.yaml): TOKEN_PARAMETER, the token's
// parameter (/token-refresher/tokens/<provider>), PARTNER_URL, the URL to call, and
// optionally REFRESHER_FUNCTION, the refresher function's name or ARN, to which the
// consumer sends a conditional rotation when the partner refuses the latest token.
// The event may name a path to append: {"path": "/v1/reports"}.
//
// The Source and the HTTP client live for the life of the execution environment, so
// warm invocations reuse the cached token; when the partner answers 401 the
// Transport reads the parameter again and retries once with a newer token, and when
// the parameter still holds the refused token, it asks the refresher for a new one
// (an asynchronous invoke), waits a few seconds at most for it, and retries once.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// Request is the invocation's event.
type Request struct {
	// Path is appended to PARTNER_URL.
	Path string `json:"path"`
}

// Response is what an invocation returns.
type Response struct {
	Status int `json:"status"`
	// Body is the partner's answer, at most 4 KiB of it.
	Body string `json:"body"`
	// TokenFingerprint identifies the token used (tokens.Fingerprint).
	TokenFingerprint string `json:"token_fingerprint"`
}

type consumer struct {
	source  *tokens.Source
	client  *http.Client
	partner string
}

func (c *consumer) handle(ctx context.Context, req Request) (Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.partner+req.Path, nil)
	if err != nil {
		return Response{}, err
	}
	resp, err := c.client.Do(hreq)
	if err != nil {
		return Response{}, fmt.Errorf("call the partner: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	// The token this call used: the Source's cached one, after any re-read.
	tok, err := c.source.TokenContext(ctx)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: resp.StatusCode, Body: string(body), TokenFingerprint: tokens.Fingerprint(tok.AccessToken)}, nil
}

func main() {
	param, partner := os.Getenv("TOKEN_PARAMETER"), os.Getenv("PARTNER_URL")
	if param == "" || partner == "" {
		fmt.Fprintln(os.Stderr, "TOKEN_PARAMETER and PARTNER_URL must be set")
		os.Exit(2)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "AWS configuration:", err)
		os.Exit(2)
	}
	// Built once, in the init phase: warm invocations reuse the cached token.
	var opts []tokens.Option
	if fn := os.Getenv("REFRESHER_FUNCTION"); fn != "" {
		opts = append(opts, tokens.WithRotation(invoker{client: awslambda.NewFromConfig(cfg), function: fn}))
	}
	src := tokens.NewSource(ssm.NewFromConfig(cfg), param, opts...)
	c := &consumer{source: src, client: tokens.NewClient(context.Background(), src), partner: partner}
	lambda.Start(c.handle)
}

// invoker sends conditional rotations to the refresher function as asynchronous
// invocations: the consumer does not wait for the function's result, only for the
// successor to be published, which the Source polls for.
type invoker struct {
	client   *awslambda.Client
	function string
}

// Rotate implements tokens.Rotator.
func (i invoker) Rotate(ctx context.Context, r tokens.Rotation) error {
	payload, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = i.client.Invoke(ctx, &awslambda.InvokeInput{
		FunctionName:   aws.String(i.function),
		InvocationType: lambdatypes.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		// The Source answers the request with the partner's 401 either way; the log
		// says why no new token came (often: the role lacks the rotation policy).
		slog.WarnContext(ctx, "conditional rotation not sent", "provider", r.Provider, "if_token", r.IfToken, "error", err)
		return fmt.Errorf("send the conditional rotation of %s to %s: %w", r.Provider, i.function, err)
	}
	return nil
}
