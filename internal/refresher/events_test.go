package refresher

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestParseEvent(t *testing.T) {
	users := func(id string) []string {
		switch id {
		case "token-refresher/ecard", "arn:aws:secretsmanager:us-east-1:123456789012:secret:token-refresher/ecard-AbCdEf":
			return []string{"ecard"}
		}
		return nil
	}
	tests := []struct {
		name  string
		event string
		want  Request
		err   error
	}{
		{"EventBridge rule", `{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","detail":{}}`,
			Request{Action: ActionRefresh, Trigger: "schedule"}, nil},
		{"EventBridge Scheduler", `{"detail-type":"Scheduled Event","source":"aws.scheduler","detail":"{}"}`,
			Request{Action: ActionRefresh, Trigger: "schedule"}, nil},
		{"refresh", `{"action":"refresh"}`, Request{Action: ActionRefresh, Trigger: "manual"}, nil},
		{"rotate one", `{"action":"rotate","providers":["ecard"]}`, Request{Action: ActionRotate, Providers: []string{"ecard"}, Trigger: "manual"}, nil},
		{"rotate all", `{"action":"rotate","providers":["*"]}`, Request{Action: ActionRotate, Providers: []string{"*"}, Trigger: "manual"}, nil},
		{"dry-run rotate", `{"action":"rotate","providers":["ecard"],"dry_run":true}`, Request{Action: ActionRotate, Providers: []string{"ecard"}, Trigger: "manual", DryRun: true}, nil},
		{"dry-run refresh", `{"action":"refresh","dry_run":true}`, Request{}, ErrUnsupportedEvent},
		{"conditional rotate", `{"action":"rotate","providers":["ecard"],"if_token":"c7798e96"}`,
			Request{Action: ActionRotate, Providers: []string{"ecard"}, Trigger: "refused token", IfToken: "c7798e96"}, nil},
		{"conditional rotate of all", `{"action":"rotate","providers":["*"],"if_token":"c7798e96"}`, Request{}, ErrUnsupportedEvent},
		{"conditional dry run", `{"action":"rotate","providers":["ecard"],"if_token":"c7798e96","dry_run":true}`, Request{}, ErrUnsupportedEvent},
		{"if_token not a fingerprint", `{"action":"rotate","providers":["ecard"],"if_token":"C7798E96"}`, Request{}, ErrUnsupportedEvent},
		{"if_token empty", `{"action":"rotate","providers":["ecard"],"if_token":""}`, Request{}, ErrUnsupportedEvent},
		{"if_token not a string", `{"action":"rotate","providers":["ecard"],"if_token":1}`, Request{}, ErrUnsupportedEvent},
		{"refresh with if_token", `{"action":"refresh","if_token":"c7798e96"}`, Request{}, ErrUnsupportedEvent},
		{"job of a conditional rotation", `{"Records":[{"messageId":"m1","eventSource":"aws:sqs","body":"{\"provider\":\"ecard\",\"planned_at\":\"2026-11-22T10:00:00Z\",\"rotate\":true,\"if_token\":\"c7798e96\"}"}]}`,
			Request{Action: actionWork, Trigger: "queue", Jobs: []Job{
				{Provider: "ecard", PlannedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Rotate: true, IfToken: "c7798e96", MessageID: "m1"},
			}}, nil},
		{"rotate without providers", `{"action":"rotate"}`, Request{}, ErrUnsupportedEvent},
		{"rotate with empty providers", `{"action":"rotate","providers":[]}`, Request{}, ErrUnsupportedEvent},
		{"rotate with star and more", `{"action":"rotate","providers":["*","ecard"]}`, Request{}, ErrUnsupportedEvent},
		{"rotate with blank name", `{"action":"rotate","providers":[" "]}`, Request{}, ErrUnsupportedEvent},
		{"misspelt key", `{"action":"rotate","provider":["ecard"]}`, Request{}, ErrUnsupportedEvent},
		{"refresh with providers", `{"action":"refresh","providers":["ecard"]}`, Request{}, ErrUnsupportedEvent},
		{"unknown action", `{"action":"delete"}`, Request{}, ErrUnsupportedEvent},
		{"action not a string", `{"action":1}`, Request{}, ErrUnsupportedEvent},
		{"empty object", `{}`, Request{}, ErrUnsupportedEvent},
		{"not JSON", `refresh`, Request{}, ErrUnsupportedEvent},
		{"JSON string", `"refresh"`, Request{}, ErrUnsupportedEvent},
		{"other EventBridge event", `{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{}}`, Request{}, ErrUnsupportedEvent},
		{"S3 notification", `{"Records":[{"eventSource":"aws:s3"}]}`, Request{}, ErrUnsupportedEvent},
		{"jobs from the queue", `{"Records":[
			{"messageId":"m1","eventSource":"aws:sqs","body":"{\"provider\":\"ecard\",\"planned_at\":\"2026-11-22T10:00:00Z\"}"},
			{"messageId":"m2","eventSource":"aws:sqs","body":"{\"provider\":\"booking\",\"planned_at\":\"2026-11-22T10:00:00Z\",\"rotate\":true}"}]}`,
			Request{Action: actionWork, Trigger: "queue", Jobs: []Job{
				{Provider: "ecard", PlannedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), MessageID: "m1"},
				{Provider: "booking", PlannedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Rotate: true, MessageID: "m2"},
			}}, nil},
		// A body that is not a job is the worker's to report, so that the message
		// reaches the dead-letter queue rather than failing its whole batch.
		{"a message that is not a job", `{"Records":[{"messageId":"m1","eventSource":"aws:sqs","body":"hello"}]}`,
			Request{Action: actionWork, Trigger: "queue", Jobs: []Job{{MessageID: "m1", err: errNotAJob}}}, nil},
		{"a queue record without its id", `{"Records":[{"eventSource":"aws:sqs","body":"{}"}]}`, Request{}, ErrUnsupportedEvent},
		{"a queue batch with another record", `{"Records":[{"messageId":"m1","eventSource":"aws:sqs","body":"{}"},{"eventSource":"aws:s3"}]}`, Request{}, ErrUnsupportedEvent},
		{"PutSecretValue by name", `{"source":"aws.secretsmanager","detail-type":"AWS API Call via CloudTrail",
			"detail":{"eventName":"PutSecretValue","requestParameters":{"secretId":"token-refresher/ecard"}}}`,
			Request{Action: ActionRotate, Providers: []string{"ecard"}, Trigger: "secret change"}, nil},
		{"RotationSucceeded by ARN", `{"source":"aws.secretsmanager","detail-type":"AWS Service Event via CloudTrail",
			"detail":{"eventName":"RotationSucceeded","additionalEventData":{"SecretId":"arn:aws:secretsmanager:us-east-1:123456789012:secret:token-refresher/ecard-AbCdEf"}}}`,
			Request{Action: ActionRotate, Providers: []string{"ecard"}, Trigger: "secret change"}, nil},
		{"change of a secret no provider uses", `{"source":"aws.secretsmanager","detail-type":"AWS API Call via CloudTrail",
			"detail":{"eventName":"UpdateSecret","requestParameters":{"secretId":"token-refresher/other"}}}`,
			Request{Action: ActionRotate, Providers: []string{}, Trigger: "secret change"}, nil},
		{"failed call", `{"source":"aws.secretsmanager","detail-type":"AWS API Call via CloudTrail",
			"detail":{"eventName":"PutSecretValue","errorCode":"AccessDenied","requestParameters":{"secretId":"token-refresher/ecard"}}}`,
			Request{Action: ActionRotate, Trigger: "secret change (failed call, ignored)"}, nil},
		{"read of a secret", `{"source":"aws.secretsmanager","detail-type":"AWS API Call via CloudTrail",
			"detail":{"eventName":"GetSecretValue","requestParameters":{"secretId":"token-refresher/ecard"}}}`, Request{}, ErrUnsupportedEvent},
		{"change naming no secret", `{"source":"aws.secretsmanager","detail-type":"AWS API Call via CloudTrail",
			"detail":{"eventName":"PutSecretValue"}}`, Request{}, ErrUnsupportedEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEvent([]byte(tt.event), users)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
