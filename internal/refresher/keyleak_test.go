package refresher

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/secrets"
)

// recordingSigner is a KMS key that keeps the last signature it made, in the DER
// form KMS returns for ECDSA.
type recordingSigner struct {
	crypto.Signer
	mu  sync.Mutex
	sig []byte
}

func (s *recordingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := s.Signer.Sign(r, digest, opts)
	s.mu.Lock()
	s.sig = sig
	s.mu.Unlock()
	return sig, err
}

func (s *recordingSigner) last() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sig
}

// echoed is one text a refusing server quotes back: a form of a key, or one
// computed from the request (the assertion, its signature, the KMS signature).
type echoed struct {
	name string
	text func(form url.Values) string
}

func fixed(name, v string) echoed {
	return echoed{name, func(url.Values) string { return v }}
}

// keyEchoes is every form oauthtest knows of a PEM key that the redactor removes
// (pieces of 16 characters or more).
func keyEchoes(name, pemText string) []echoed {
	var out []echoed
	for _, f := range oauthtest.KeyForms(pemText) {
		if len(f) >= 16 {
			out = append(out, fixed(name, f))
		}
	}
	return out
}

// assertionEchoes is every form of the assertion the server received and of its
// signature.
func assertionEchoes() []echoed {
	part := func(form url.Values, sig bool) string {
		a := form.Get("client_assertion")
		if sig {
			return a[strings.LastIndexByte(a, '.')+1:]
		}
		return a
	}
	var out []echoed
	for _, sig := range []bool{false, true} {
		for i := range len(oauthtest.Base64TextForms("a/b")) {
			name := "assertion"
			if sig {
				name = "signature"
			}
			out = append(out, echoed{name, func(form url.Values) string {
				forms := oauthtest.Base64TextForms(part(form, sig))
				return forms[min(i, len(forms)-1)]
			}})
		}
	}
	return out
}

// TestKeyMaterialNeverInRecordsOrMessages: a token endpoint that refuses and
// quotes back a form of the private key, of the certificate's key, of the
// assertion, of its signature or of the KMS signature (every form oauthtest
// lists), together with the whole request body, leaves none of them in the
// result, the log, the metrics, the health and run records or the queue's
// messages, in a single run, in a fanned-out one (planner, then worker) and in
// the dry run of a probe.
func TestKeyMaterialNeverInRecordsOrMessages(t *testing.T) {
	pemKey, mtlsKey, kmsKey := oauthtest.NewECKey(), oauthtest.NewRSAKey(2048), &recordingSigner{Signer: oauthtest.NewECKey()}
	pemText, mtlsText := oauthtest.KeyPEM(pemKey, oauthtest.PKCS8), oauthtest.KeyPEM(mtlsKey, oauthtest.PKCS1)
	_, certPEM := oauthtest.SelfSigned(mtlsKey, "mtls", time.Hour)
	registered, _ := oauthtest.SelfSigned(oauthtest.NewECKey(), "registered", time.Hour)
	other := oauthtest.NewECKey()

	kmsEchoes := []echoed{}
	for i := range len(oauthtest.Base64TextForms("a/b")) {
		kmsEchoes = append(kmsEchoes, echoed{"kms signature", func(url.Values) string {
			forms := oauthtest.Base64TextForms(base64.StdEncoding.EncodeToString(kmsKey.last()))
			return forms[min(i, len(forms)-1)]
		}})
	}
	providers := []struct {
		name   string
		client oauthtest.KeyClient
		secret secrets.Secret
		entry  string
		echoes []echoed
	}{
		{
			name:   "pem",
			client: oauthtest.KeyClient{ID: "id-pem", Method: oauth.PrivateKeyJWT, PublicKey: other.Public()},
			secret: secrets.Secret{ClientID: "id-pem", PrivateKey: pemText, VersionID: "v1"},
			echoes: append(keyEchoes("private key", pemText), assertionEchoes()...),
		},
		{
			name:   "kms",
			client: oauthtest.KeyClient{ID: "id-kms", Method: oauth.PrivateKeyJWT, PublicKey: other.Public()},
			secret: secrets.Secret{ClientID: "id-kms", VersionID: "v1"},
			entry:  "    signing_key: kms:alias/k\n",
			echoes: append(kmsEchoes, assertionEchoes()...),
		},
		{
			name:   "mtls",
			client: oauthtest.KeyClient{ID: "id-mtls", Method: oauth.TLSClientAuth, Certificate: registered},
			secret: secrets.Secret{ClientID: "id-mtls", Certificate: certPEM, PrivateKey: mtlsText, VersionID: "v1"},
			echoes: keyEchoes("certificate's key", mtlsText),
		},
	}
	for _, p := range providers {
		for _, mode := range []string{"single", "fan-out", "probe"} {
			t.Run(p.name+"/"+mode, func(t *testing.T) {
				srv := oauthtest.NewKeyServer()
				defer srv.Close()
				u := srv.TokenURL()
				ep := oauth.Endpoint{TokenURL: u, AuthMethod: p.client.Method}
				if p.client.Method == oauth.PrivateKeyJWT {
					ep.SigningAlg = oauth.ES256
				}
				reg, err := registry.Load(strings.NewReader("providers:\n"+registry.EntryYAML(p.name, "s/"+p.name, ep)+p.entry), registry.Options{})
				if err != nil {
					t.Fatal(err)
				}
				sec, st, state, q := newFakeSecrets(), newFakeStore(), newFakeState(), &fakeQueue{}
				sec.current["s/"+p.name] = p.secret
				var out, metrics bytes.Buffer
				log := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
				c := fastClient()
				c.HTTPClient = srv.Client()
				r := &Refresher{Providers: reg, Secrets: sec, Store: st, Client: c, State: state, Log: log,
					Keys:    &fakeKeys{keys: map[string]crypto.Signer{"alias/k": kmsKey}},
					Metrics: &Metrics{Out: &metrics, Namespace: "TokenRefresher", PerProvider: true}}
				if mode == "fan-out" {
					r.Queue = q
				}
				h := &Handler{Refresher: r, Log: log}

				for i, e := range p.echoes {
					// The server quotes this text and the request body in its refusal;
					// what was quoted is checked against everything written since.
					var quoted string
					client := p.client
					client.EchoRefusal = true
					client.Quote = func(form url.Values) string {
						quoted = e.text(form)
						return quoted
					}
					srv.Add(client)
					before, beforeMetrics, requests := out.Len(), metrics.Len(), len(srv.Seen())
					var results []Result
					run := func(event []byte) {
						res, err := h.Handle(context.Background(), event)
						results = append(results, res)
						if err != nil {
							out.WriteString(err.Error())
						}
					}
					switch mode {
					case "single":
						run([]byte(`{"action":"rotate","providers":["*"]}`))
					case "probe":
						// What tokenctl check -probe runs and prints.
						run([]byte(`{"action":"rotate","providers":["*"],"dry_run":true}`))
					default:
						run(scheduled)
						if len(q.last()) != 1 {
							t.Fatalf("%s %d: got %d messages from the planner, want 1", e.name, i, len(q.last()))
						}
						run(delivery(t, "m", q.last()))
					}
					if n := len(srv.Seen()) - requests; n == 0 || quoted == "" {
						t.Fatalf("%s %d: got %d requests, quoted %q: the server quoted nothing", e.name, i, n, quoted)
					}
					last := results[len(results)-1]
					if len(last.Results) != 1 || last.Results[0].Status != StatusFailed {
						t.Fatalf("%s %d: got %+v, want the provider failed", e.name, i, last)
					}
					if out.Len() == before || metrics.Len() == beforeMetrics || (mode == "fan-out") != (len(q.sent) > 0) {
						t.Fatalf("%s %d: got %d bytes logged, %d of metrics, %d sends to the queue: the test checked too little",
							e.name, i, out.Len()-before, metrics.Len()-beforeMetrics, len(q.sent))
					}
					res, _ := json.Marshal(results)
					health, _ := json.Marshal(state.health)
					runRecord, _ := json.Marshal(state.run)
					msgs, _ := json.Marshal(q.sent)
					for where, text := range map[string]string{
						"result": string(res), "log": out.String()[before:], "metrics": metrics.String()[beforeMetrics:],
						"health record": string(health), "run record": string(runRecord), "queue messages": string(msgs),
					} {
						if strings.Contains(text, quoted) {
							t.Errorf("%s %d: got the %s containing the quoted %q, want it redacted", e.name, i, where, quoted)
						}
					}
					// Raw DER is no UTF-8: the server's JSON cannot carry it whole, so
					// only a quote that arrives as it was must show the redaction.
					if !utf8.ValidString(quoted) {
						continue
					}
					if !strings.Contains(string(res), "[redacted]") {
						t.Errorf("%s %d: got result %s, want the refusal in it, redacted", e.name, i, res)
					}
					if mode != "probe" && !strings.Contains(string(health), "[redacted]") {
						t.Errorf("%s %d: got health record %s, want the refusal in it, redacted", e.name, i, health)
					}
				}
			})
		}
	}
}
