package refresher

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/secrets"
	"github.com/token-refresher/token-refresher/internal/state"
	"github.com/token-refresher/token-refresher/internal/store"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// fakeSecrets is an in-memory SecretSource.
type fakeSecrets struct {
	mu       sync.Mutex
	current  map[string]secrets.Secret
	previous map[string]secrets.Secret
	errs     map[string]error
	cache    map[string]secrets.Secret
	reads    int
}

func newFakeSecrets() *fakeSecrets {
	return &fakeSecrets{current: map[string]secrets.Secret{}, previous: map[string]secrets.Secret{},
		errs: map[string]error{}, cache: map[string]secrets.Secret{}}
}

func (f *fakeSecrets) Current(_ context.Context, ids []string, _ ...secrets.ReadOption) (map[string]secrets.Secret, map[string]error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out, errs := map[string]secrets.Secret{}, map[string]error{}
	for _, id := range ids {
		if s, ok := f.cache[id]; ok {
			out[id] = s
			continue
		}
		f.reads++
		if err := f.errs[id]; err != nil {
			errs[id] = err
			continue
		}
		out[id] = f.current[id]
		f.cache[id] = f.current[id]
	}
	return out, errs
}

func (f *fakeSecrets) Fresh(_ context.Context, id string, _ ...secrets.ReadOption) (secrets.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	f.cache[id] = f.current[id]
	return f.current[id], f.errs[id]
}

func (f *fakeSecrets) Previous(_ context.Context, id string) (secrets.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	s, ok := f.previous[id]
	if !ok {
		return secrets.Secret{}, secrets.ErrNotFound
	}
	return s, nil
}

func (f *fakeSecrets) Cached(id string) (secrets.Secret, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.cache[id]
	return s, ok
}

func (f *fakeSecrets) Invalidate(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.cache, id)
}

// fakeStore is an in-memory TokenStore. It counts versions as SSM does, and
// records the version each Publish was based on.
type fakeStore struct {
	mu         sync.Mutex
	tokens     map[string]tokens.Token
	malformed  map[string]error
	versions   map[string]int64
	afters     map[string]int64 // the after of the latest Publish per parameter
	writes     int
	currents   int // calls of Current
	reads      int // parameters read by Tokens
	currentErr error
	publishErr map[string]error
}

func newFakeStore() *fakeStore {
	return &fakeStore{tokens: map[string]tokens.Token{}, malformed: map[string]error{}, versions: map[string]int64{},
		afters: map[string]int64{}, publishErr: map[string]error{}}
}

func (f *fakeStore) Current(context.Context) (store.Published, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.currents++
	if f.currentErr != nil {
		return store.Published{}, f.currentErr
	}
	return store.Published{Tokens: maps.Clone(f.tokens), Malformed: maps.Clone(f.malformed), Versions: maps.Clone(f.versions)}, nil
}

func (f *fakeStore) Tokens(_ context.Context, params []string) (store.Published, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads += len(params)
	if f.currentErr != nil {
		return store.Published{}, f.currentErr
	}
	out := store.Published{Tokens: map[string]tokens.Token{}, Malformed: map[string]error{}, Versions: map[string]int64{}}
	for _, p := range params {
		if t, ok := f.tokens[p]; ok {
			out.Tokens[p] = t
		}
		if e, ok := f.malformed[p]; ok {
			out.Malformed[p] = e
		}
		if v, ok := f.versions[p]; ok {
			out.Versions[p] = v
		}
	}
	return out, nil
}

func (f *fakeStore) Publish(_ context.Context, w store.Write) (tokens.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name, t, after := w.Parameter, w.Token, w.After
	if err := f.publishErr[name]; err != nil {
		return tokens.Token{}, err
	}
	f.writes++
	f.tokens[name] = t
	f.versions[name]++
	f.afters[name] = after
	delete(f.malformed, name)
	return t, nil
}

// fakeState is an in-memory StateStore that counts its calls.
type fakeState struct {
	mu                        sync.Mutex
	health                    map[string]state.Health
	run                       state.Run
	runVersion                int64
	healthReads, healthWrites int
	runReads, runWrites       int
	runErr                    error
}

func newFakeState() *fakeState { return &fakeState{health: map[string]state.Health{}} }

func (f *fakeState) Health(_ context.Context, providers []string) (map[string]state.Health, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.healthReads++
	out := map[string]state.Health{}
	for _, p := range providers {
		if h, ok := f.health[p]; ok {
			out[p] = h
		}
	}
	return out, nil
}

func (f *fakeState) PutHealth(_ context.Context, h state.Health) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.healthWrites++
	f.health[h.Provider] = h
	return nil
}

func (f *fakeState) Run(context.Context) (state.Run, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runReads++
	return f.run, f.runVersion, f.runErr
}

func (f *fakeState) PutRun(_ context.Context, r state.Run) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runWrites++
	f.run = r
	f.runVersion++
	return nil
}

// world is a registry of fake providers, one per seed dialect, with their secrets.
type world struct {
	urls    map[string]string // token URL by provider
	srv     *oauthtest.Server
	reg     *registry.Registry
	secrets *fakeSecrets
	store   *fakeStore
	state   *fakeState
}

// newWorld builds the world; extra YAML lines are added to every provider's entry.
func newWorld(t *testing.T, extra ...string) *world {
	t.Helper()
	w := &world{srv: oauthtest.NewServer(), secrets: newFakeSecrets(), store: newFakeStore(), state: newFakeState(), urls: map[string]string{}}
	t.Cleanup(w.srv.Close)
	var doc strings.Builder
	doc.WriteString("providers:\n")
	for _, d := range oauthtest.Dialects() {
		name := string(d)
		sec := secrets.Secret{ClientID: "id-" + name, ClientSecret: "secret+/=% " + name, VersionID: "v1"}
		u := w.srv.Add(oauthtest.Provider{Name: name, Dialect: d, ClientID: sec.ClientID, ClientSecret: sec.ClientSecret})
		w.urls[name] = u
		w.secrets.current["token-refresher/"+name] = sec
		doc.WriteString(registry.EntryYAML(name, "token-refresher/"+name, d.Endpoint(u)))
		for _, e := range extra {
			doc.WriteString("    " + e + "\n")
		}
	}
	reg, err := registry.Load(strings.NewReader(doc.String()), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.reg = reg
	return w
}

// registryYAML is the world's registry again, with extra lines in every entry.
func (w *world) registryYAML(extra ...string) string {
	var doc strings.Builder
	doc.WriteString("providers:\n")
	for _, d := range oauthtest.Dialects() {
		doc.WriteString(registry.EntryYAML(string(d), "token-refresher/"+string(d), d.Endpoint(w.urls[string(d)])))
		for _, e := range extra {
			doc.WriteString("    " + e + "\n")
		}
	}
	return doc.String()
}

func (w *world) refresher() *Refresher {
	return &Refresher{Providers: w.reg, Secrets: w.secrets, Store: w.store, Client: fastClient(), State: w.state}
}
