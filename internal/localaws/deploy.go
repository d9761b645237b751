package localaws

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Refresher is a deployment of the refresher's stack to LocalStack, made as a user
// makes one: make deploy ENV=local PROVIDERS=FILE.
type Refresher struct {
	// Repo is the repository's root.
	Repo string
	// Stack is the stack's name.
	Stack string
	// Providers is the registry file the build embeds.
	Providers string
	// Params are more template parameters, one string as samconfig.toml writes them.
	Params string
	// BuildDir is sam build's directory, so that concurrent builds do not meet.
	BuildDir string
	// Log receives the commands' output; os.Stderr when nil.
	Log *os.File
}

// Deploy builds the function for this host with the registry embedded and deploys
// the stack, returning its outputs.
func (d Refresher) Deploy(ctx context.Context) (map[string]string, error) {
	out, err := run(ctx, d.Repo, d.Log, "make", "deploy", "ENV=local", "PROVIDERS="+d.Providers,
		"STACK_NAME="+d.Stack, "SAM_BUILD_DIR="+d.BuildDir, "PARAMS="+d.Params)
	if err != nil {
		return nil, err
	}
	return outputs(out), nil
}

// Consumer is a deployment of the example consumer (examples/consumer-go) next to a
// refresher stack, whose consumer policy it imports.
type Consumer struct {
	Repo, Stack, RefresherStack string
	// TokenParameter is the parameter of the token the consumer uses.
	TokenParameter string
	// PartnerURL is the partner API it calls.
	PartnerURL string
	BuildDir   string
	Log        *os.File
}

// Deploy builds the consumer for this host and deploys its stack, returning its outputs.
func (d Consumer) Deploy(ctx context.Context) (map[string]string, error) {
	sam := filepath.Join(d.Repo, ".venv", "tools", "bin", "sam")
	if _, err := run(ctx, d.Repo, d.Log, "make", "venv-tools"); err != nil {
		return nil, err
	}
	build := exec.CommandContext(ctx, sam, "build", "--template-file", "examples/consumer-go/template.yaml",
		"--build-dir", d.BuildDir, "--build-in-source", "--parameter-overrides", "Architecture="+HostArch())
	build.Env = append(os.Environ(), "SAM_CLI_TELEMETRY=0", "AWS_DEFAULT_REGION=us-east-1", "TOKEN_REFRESHER_GOARCH="+runtime.GOARCH)
	if _, err := runCmd(build, d.Repo, d.Log); err != nil {
		return nil, err
	}
	params := fmt.Sprintf("RefresherStack=%s TokenParameter=%s PartnerUrl=%s Architecture=%s",
		d.RefresherStack, d.TokenParameter, d.PartnerURL, HostArch())
	out, err := run(ctx, d.Repo, d.Log, "scripts/deploy-local", d.Stack, filepath.Join(d.BuildDir, "template.yaml"), params)
	if err != nil {
		return nil, err
	}
	return outputs(out), nil
}

// DeleteStack deletes a stack from LocalStack.
func DeleteStack(ctx context.Context, repo, stack string, log *os.File) error {
	_, err := run(ctx, repo, log, filepath.Join(repo, ".venv", "tools", "bin", "python"), "scripts/sam-local-checks.py", "delete", stack)
	return err
}

// HostArch is the template's Architecture for this host.
func HostArch() string {
	if runtime.GOARCH == "arm64" {
		return "arm64"
	}
	return "x86_64"
}

func run(ctx context.Context, dir string, log *os.File, name string, args ...string) ([]byte, error) {
	return runCmd(exec.CommandContext(ctx, name, args...), dir, log)
}

// runCmd runs cmd in dir, its stderr to log and its stdout returned.
func runCmd(cmd *exec.Cmd, dir string, log *os.File) ([]byte, error) {
	if log == nil {
		log = os.Stderr
	}
	var stdout bytes.Buffer
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, log
	if err := cmd.Run(); err != nil {
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		return nil, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, strings.Join(lines[max(0, len(lines)-20):], "\n"))
	}
	return stdout.Bytes(), nil
}

// outputs reads the "output KEY=VALUE" lines scripts/deploy-local prints.
func outputs(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if kv, ok := strings.CutPrefix(sc.Text(), "output "); ok {
			if k, v, ok := strings.Cut(kv, "="); ok {
				out[k] = v
			}
		}
	}
	return out
}
