package secrets

import "strings"

// match returns the id in ids that names the secret called name with the given
// ARN, or "". An id may be the secret's name, its full ARN, or its ARN without
// the six-character suffix Secrets Manager appends ("partial ARN").
func match(ids []string, name, arn string) string {
	for _, id := range ids {
		if SameSecret(id, name, arn) {
			return id
		}
	}
	return ""
}

// SameSecret reports whether id (a name, full ARN or partial ARN) refers to the
// secret with this name and ARN. Either of name and arn may be empty.
func SameSecret(id, name, arn string) bool {
	switch {
	case id == "":
		return false
	case id == name || id == arn:
		return true
	case strings.HasPrefix(id, "arn:"):
		// A partial ARN is the full ARN less "-XXXXXX".
		return arn != "" && len(arn) == len(id)+7 && strings.HasPrefix(arn, id+"-")
	case arn != "":
		// A name matches the ARN ...:secret:NAME-XXXXXX.
		i := strings.Index(arn, ":secret:")
		return i >= 0 && len(arn) == i+len(":secret:")+len(id)+7 && arn[i+len(":secret:"):len(arn)-7] == id
	}
	return false
}
