package refresher

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/token-refresher/token-refresher/internal/cut"
)

// CertificateWarning is how close to its expiry a mutual TLS client certificate
// makes its provider degraded: time enough to have the partner register a new one.
const CertificateWarning = 30 * 24 * time.Hour

// maxSubject bounds a certificate subject in a result.
const maxSubject = 256

// Certificate is what a probe reports of a mutual TLS client certificate: never
// its key.
type Certificate struct {
	Subject  string `json:"subject"`
	NotAfter string `json:"not_after"`
}

// leafCertificate parses the first certificate of a PEM chain, the one presented.
func leafCertificate(chain string) (*x509.Certificate, error) {
	rest := []byte(chain)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("the secret's certificate holds no PEM certificate")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// certificateCheck describes the client certificate of a provider using mutual
// TLS, and says, when it expires within CertificateWarning of now, why that makes
// the provider degraded.
func certificateCheck(chain string, now time.Time) (*Certificate, string) {
	c, err := leafCertificate(chain)
	if err != nil {
		return nil, "" // the request already used it; nothing more to say
	}
	info := &Certificate{Subject: cut.String(c.Subject.String(), maxSubject), NotAfter: stamp(c.NotAfter)}
	if left := c.NotAfter.Sub(now); left < CertificateWarning {
		return info, fmt.Sprintf("the client certificate %s expires at %s, within %d days: have the partner register a new one",
			info.Subject, info.NotAfter, int(CertificateWarning/(24*time.Hour)))
	}
	return info, ""
}
