package refresher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/token-refresher/token-refresher/internal/cut"
)

// Action is what a request asks for.
type Action string

// Actions.
const (
	// ActionRefresh refreshes every provider that is due.
	ActionRefresh Action = "refresh"
	// ActionRotate obtains a new token now for the named providers.
	ActionRotate Action = "rotate"
	// actionWork refreshes the providers of jobs a planner sent through the queue.
	actionWork Action = "work"
)

// Trigger says what asked for a run; it names the run in its summary log line.
type Trigger string

// Triggers.
const (
	TriggerSchedule     Trigger = "schedule"
	triggerManual       Trigger = "manual"
	triggerSecretChange Trigger = "secret change"
	// triggerSecretChangeIgnored is a secret change whose call failed: it changed
	// nothing, so the run rotates nothing.
	triggerSecretChangeIgnored Trigger = "secret change (failed call, ignored)"
	triggerQueue               Trigger = "queue"
	// triggerRefusedToken is a conditional rotation, sent by a consumer whose
	// partner refused the published token.
	triggerRefusedToken Trigger = "refused token"
)

// fingerprintExpr is what tokens.Fingerprint returns.
var fingerprintExpr = regexp.MustCompile(`^[0-9a-f]{8}$`)

// Request is an invocation's intent, decoded from its event by parseEvent.
type Request struct {
	Action Action
	// Providers names the providers to rotate; ["*"] means all.
	Providers []string
	// Trigger says what asked: TriggerSchedule, triggerManual, triggerSecretChange,
	// triggerSecretChangeIgnored or triggerQueue.
	Trigger Trigger
	// DryRun, for a rotation: obtain (and verify) the tokens and report them, publish
	// nothing, record nothing.
	DryRun bool
	// IfToken makes a rotation conditional: a provider is rotated only while its
	// published token has this fingerprint (tokens.Fingerprint), and only by the one
	// invocation that takes its lease (see conditional.go).
	IfToken string
	// Jobs are a worker's: the providers a planner sent, each with the message it
	// came in (actionWork).
	Jobs []Job
}

// Errors parseEvent and Run return for requests they refuse. Nothing is changed.
var (
	ErrUnsupportedEvent = errors.New("unsupported event")
	ErrUnknownProvider  = errors.New("unknown provider")
)

// secretLookup finds the providers that use a secret, named by name or ARN.
type secretLookup func(secretID string) []string

// parseEvent decodes the events the function accepts:
//   - an EventBridge schedule ("Scheduled Event" from aws.events or aws.scheduler),
//     or {"action":"refresh"}: refresh what is due;
//   - {"action":"rotate","providers":[...]}: a new token now, ["*"] for all; with
//     "dry_run":true, obtain and report the tokens without publishing them; with
//     "if_token":FINGERPRINT, only while the published token is that one;
//   - a batch of jobs from the fan-out queue (SQS), for a worker;
//   - a Secrets Manager change delivered through CloudTrail (PutSecretValue,
//     UpdateSecret, RotateSecret, UpdateSecretVersionStage, RotationSucceeded):
//     rotate the providers using that secret, found with users. The record of a
//     call that failed changes nothing and rotates nothing.
//
// Anything else is refused with an error wrapping ErrUnsupportedEvent.
func parseEvent(raw []byte, users secretLookup) (Request, error) {
	var ev struct {
		events.EventBridgeEvent
		Action    *string   `json:"action"`
		Providers *[]string `json:"providers"`
		DryRun    bool      `json:"dry_run"`
		IfToken   *string   `json:"if_token"`
		Records   []struct {
			MessageID   string `json:"messageId"`
			EventSource string `json:"eventSource"`
			Body        string `json:"body"`
		} `json:"Records"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			return Request{}, fmt.Errorf("%w: field %q is a JSON %s", ErrUnsupportedEvent, cut.String(typ.Field, maxName), typ.Value)
		}
		if errors.As(err, new(*time.ParseError)) {
			return Request{}, fmt.Errorf("%w: field \"time\" is not an RFC 3339 time", ErrUnsupportedEvent)
		}
		return Request{}, fmt.Errorf("%w: not a JSON object", ErrUnsupportedEvent)
	}
	switch {
	case len(ev.Records) > 0 && ev.Records[0].EventSource == "aws:sqs":
		req := Request{Action: actionWork, Trigger: triggerQueue}
		for _, rec := range ev.Records {
			// A failure must name its message, or the whole batch comes back.
			if rec.EventSource != "aws:sqs" || rec.MessageID == "" {
				return Request{}, fmt.Errorf("%w: a batch of SQS messages with a record that is not one", ErrUnsupportedEvent)
			}
			req.Jobs = append(req.Jobs, decodeJob(rec.MessageID, rec.Body))
		}
		return req, nil
	case ev.Action != nil:
		return manual(*ev.Action, ev.Providers, ev.DryRun, ev.IfToken, raw)
	case ev.DetailType == "Scheduled Event" && (ev.Source == "aws.events" || ev.Source == "aws.scheduler"):
		return Request{Action: ActionRefresh, Trigger: TriggerSchedule}, nil
	case ev.Source == "aws.secretsmanager" && len(ev.Detail) > 0:
		return secretChange(ev.Detail, users)
	case ev.Source != "" || ev.DetailType != "":
		return Request{}, fmt.Errorf("%w: source %q, detail-type %q", ErrUnsupportedEvent, cut.String(ev.Source, maxName), cut.String(ev.DetailType, maxName))
	}
	return Request{}, fmt.Errorf(`%w: expected a schedule event, {"action":"refresh"}, {"action":"rotate","providers":[...]} or a Secrets Manager change event`, ErrUnsupportedEvent)
}

func manual(action string, providers *[]string, dryRun bool, ifToken *string, raw []byte) (Request, error) {
	// Reject misspelt keys: a "provider" typo must not turn a rotation into nothing.
	var strict struct {
		Action    string   `json:"action"`
		Providers []string `json:"providers"`
		DryRun    bool     `json:"dry_run"`
		IfToken   string   `json:"if_token"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&strict); err != nil {
		return Request{}, fmt.Errorf("%w: %s", ErrUnsupportedEvent, cut.String(err.Error(), maxText))
	}
	switch Action(action) {
	case ActionRefresh:
		if providers != nil {
			return Request{}, fmt.Errorf(`%w: "refresh" takes no providers; use "rotate" to renew named providers now`, ErrUnsupportedEvent)
		}
		if dryRun {
			return Request{}, fmt.Errorf(`%w: "dry_run" goes with "rotate"`, ErrUnsupportedEvent)
		}
		if ifToken != nil {
			return Request{}, fmt.Errorf(`%w: "if_token" goes with "rotate"`, ErrUnsupportedEvent)
		}
		return Request{Action: ActionRefresh, Trigger: triggerManual}, nil
	case ActionRotate:
		if providers == nil || len(*providers) == 0 {
			return Request{}, fmt.Errorf(`%w: "rotate" needs "providers": a list of provider names, or ["*"] for all`, ErrUnsupportedEvent)
		}
		for _, p := range *providers {
			if p == "*" && len(*providers) > 1 {
				return Request{}, fmt.Errorf(`%w: "*" must stand alone in "providers"`, ErrUnsupportedEvent)
			}
			if strings.TrimSpace(p) == "" {
				return Request{}, fmt.Errorf(`%w: empty provider name in "providers"`, ErrUnsupportedEvent)
			}
		}
		req := Request{Action: ActionRotate, Providers: *providers, Trigger: triggerManual, DryRun: dryRun}
		if ifToken != nil {
			if !fingerprintExpr.MatchString(*ifToken) {
				return Request{}, fmt.Errorf(`%w: "if_token" %q: want the refused token's fingerprint, the first 8 hex digits of its SHA-256 (tokens.Fingerprint)`,
					ErrUnsupportedEvent, cut.String(*ifToken, maxName))
			}
			if (*providers)[0] == "*" {
				return Request{}, fmt.Errorf(`%w: "if_token" names one token: name its provider in "providers", not "*"`, ErrUnsupportedEvent)
			}
			if dryRun {
				return Request{}, fmt.Errorf(`%w: "if_token" and "dry_run" do not go together: a dry run publishes nothing that could replace the refused token`, ErrUnsupportedEvent)
			}
			req.IfToken, req.Trigger = *ifToken, triggerRefusedToken
		}
		return req, nil
	}
	return Request{}, fmt.Errorf(`%w: action %q (expected "refresh" or "rotate")`, ErrUnsupportedEvent, cut.String(action, maxName))
}

// secretChange reads a CloudTrail record of a Secrets Manager call, as EventBridge
// delivers it ("AWS API Call via CloudTrail", or "AWS Service Event via CloudTrail"
// for RotationSucceeded).
func secretChange(detail json.RawMessage, users secretLookup) (Request, error) {
	var d struct {
		EventName         string `json:"eventName"`
		ErrorCode         string `json:"errorCode"`
		RequestParameters struct {
			SecretID string `json:"secretId"`
		} `json:"requestParameters"`
		ResponseElements struct {
			ARN string `json:"arn"`
		} `json:"responseElements"`
		AdditionalEventData struct {
			SecretID string `json:"SecretId"`
		} `json:"additionalEventData"`
	}
	if err := json.Unmarshal(detail, &d); err != nil {
		return Request{}, fmt.Errorf("%w: Secrets Manager event with unreadable detail", ErrUnsupportedEvent)
	}
	switch d.EventName {
	case "PutSecretValue", "UpdateSecret", "RotateSecret", "RotationSucceeded", "UpdateSecretVersionStage":
	default:
		return Request{}, fmt.Errorf("%w: Secrets Manager event %q", ErrUnsupportedEvent, cut.String(d.EventName, maxName))
	}
	if d.ErrorCode != "" {
		// A call that failed changed nothing.
		return Request{Action: ActionRotate, Trigger: triggerSecretChangeIgnored}, nil
	}
	var ids []string
	for _, id := range []string{d.RequestParameters.SecretID, d.ResponseElements.ARN, d.AdditionalEventData.SecretID} {
		if id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return Request{}, fmt.Errorf("%w: Secrets Manager event %q names no secret", ErrUnsupportedEvent, cut.String(d.EventName, maxName))
	}
	seen := map[string]bool{}
	req := Request{Action: ActionRotate, Providers: []string{}, Trigger: triggerSecretChange}
	for _, id := range ids {
		for _, name := range users(id) {
			if !seen[name] {
				seen[name] = true
				req.Providers = append(req.Providers, name)
			}
		}
	}
	return req, nil
}
