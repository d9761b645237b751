package refresher

import (
	"fmt"
	"strings"

	"github.com/token-refresher/token-refresher/internal/cut"
)

// Bounds on text in results, log lines and errors. Text from outside (a provider's
// error, an event's fields, an AWS error) is bounded before it is stored anywhere:
// a Lambda response holds at most 6 MB, a CloudWatch log event 256 KB.
const (
	// maxText bounds one outcome's error, reason or note.
	maxText = 1024
	// maxName bounds a name taken from an event.
	maxName = 80
	// maxNamed bounds how many entries an error lists; the result and the logs
	// have every one.
	maxNamed = 10
)

// bound cuts s to maxText bytes.
func bound(s string) string { return cut.String(s, maxText) }

// list joins at most n items with sep, and says how many more there are.
func list(items []string, n int, sep string) string {
	if len(items) <= n {
		return strings.Join(items, sep)
	}
	return strings.Join(items[:n], sep) + fmt.Sprintf("%sand %d more", sep, len(items)-n)
}

func joinNotes(notes []string) string { return strings.Join(notes, "; ") }
