// Command gofn is a small aws-lambda-go function for the hostmode executor's tests: a
// real Go runtime client (keep-alive, chunked bodies, the SIGTERM extension) rather
// than the Python fake.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Action  string `json:"action"`
	Message string `json:"message"`
}

func handle(_ context.Context, e event) (map[string]any, error) {
	switch e.Action {
	case "fail":
		return nil, errors.New(e.Message)
	case "panic":
		panic(e.Message)
	case "exit":
		os.Exit(2)
	}
	fmt.Println("gofn: handled", e.Message)
	return map[string]any{"pid": os.Getpid(), "message": e.Message}, nil
}

func main() {
	lambda.StartWithOptions(handle, lambda.WithEnableSIGTERM(func() { fmt.Println("gofn: SIGTERM") }))
}
