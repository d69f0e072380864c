// Package docker checks the Dockerfile and docker-compose.yml beside it. Docker's engine
// does not run everywhere the tests do, so the tests read both files, check the rules the
// deployment depends on, and run the Dockerfile's own go build command.
package docker

import (
	"bufio"
	"cmp"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.yaml.in/yaml/v3"

	"monitor/config"
	"monitor/internal/testenv"
)

// repoRoot is the build context of the image, relative to this package's directory.
const repoRoot = ".."

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	cmd  string // the keyword in upper case
	args string
	line int
}

// stage is one FROM … section of a Dockerfile.
type stage struct {
	image, name string
	ins         []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// env returns the variables the stage's ENV instructions set.
func (s stage) env(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, in := range s.all("ENV") {
		w := shellWords(t, in.args)
		if len(w) >= 2 && !strings.Contains(w[0], "=") {
			env[w[0]] = strings.Join(w[1:], " ") // the legacy ENV key value form
			continue
		}
		for _, kv := range w {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("Dockerfile:%d: ENV %q is not key=value", in.line, kv)
			}
			env[k] = v
		}
	}
	return env
}

func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}()
	var (
		stages  []stage
		pending strings.Builder
		start   int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue // comments and blank lines may also sit inside a continuation
		}
		if pending.Len() == 0 {
			start = n
		}
		cont := strings.HasSuffix(line, `\`)
		pending.WriteString(strings.TrimSuffix(line, `\`))
		if cont {
			pending.WriteByte(' ')
			continue
		}
		keyword, args, _ := strings.Cut(pending.String(), " ")
		pending.Reset()
		in := instruction{cmd: strings.ToUpper(keyword), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			w := slices.DeleteFunc(strings.Fields(in.args), func(s string) bool { return strings.HasPrefix(s, "--") })
			st := stage{image: w[0]}
			if len(w) == 3 && strings.EqualFold(w[1], "AS") {
				st.name = w[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if pending.Len() > 0 {
		t.Fatal("Dockerfile ends inside a line continuation")
	}
	return stages
}

// shellWords splits a command line the way sh would for plain words, single and double
// quotes and backslash escapes; it refuses anything that needs a real shell.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	for i := 0; i < len(s); i++ {
		c := rune(s[i])
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case quote == '"':
			switch c {
			case '"':
				quote = 0
			case '\\':
				i++
				cur.WriteByte(s[i])
			case '$', '`':
				t.Fatalf("%q needs a shell to expand %c", s, c)
			default:
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == '\\':
			i++
			cur.WriteByte(s[i])
			in = true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case strings.ContainsRune("$`|;<>()&*?", c):
			t.Fatalf("%q needs a shell for %c", s, c)
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("%q has an unterminated quote", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// buildCommand is the go build command of the Dockerfile's build stage.
type buildCommand struct {
	stage stage
	// env holds the stage's ENV and any VAR=value prefix of the command.
	env  map[string]string
	args []string // from "go" on
	out  string   // the -o path
	line int
}

func dockerBuildCommand(t *testing.T, stages []stage) buildCommand {
	t.Helper()
	var found []buildCommand
	for _, st := range stages {
		for _, in := range st.all("RUN") {
			// RUN flags such as --mount=type=cache,… come before the shell command.
			rest := in.args
			for strings.HasPrefix(rest, "--") {
				_, rest, _ = strings.Cut(rest, " ")
				rest = strings.TrimSpace(rest)
			}
			for seg := range strings.SplitSeq(rest, "&&") {
				if !strings.Contains(seg, "go build") {
					continue
				}
				bc := buildCommand{stage: st, env: st.env(t), line: in.line}
				w := shellWords(t, strings.TrimSpace(seg))
				for len(w) > 0 && strings.Contains(w[0], "=") {
					k, v, _ := strings.Cut(w[0], "=")
					bc.env[k] = v
					w = w[1:]
				}
				if len(w) < 2 || w[0] != "go" || w[1] != "build" {
					t.Fatalf("Dockerfile:%d: %q is not a plain go build command", in.line, seg)
				}
				bc.args = w
				if i := slices.Index(w, "-o"); i > 0 && i+1 < len(w) {
					bc.out = w[i+1]
				}
				found = append(found, bc)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("Dockerfile has %d go build commands, want exactly one", len(found))
	}
	return found[0]
}

// goMinor returns the major.minor Go version that go.mod requires, e.g. "1.26".
func goMinor(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(stages))
	}
	bc := dockerBuildCommand(t, stages)
	build, final := stages[0], stages[len(stages)-1]

	t.Run("build stage", func(t *testing.T) {
		if want := "golang:" + goMinor(t); build.image != want && !strings.HasPrefix(build.image, want+"-") && !strings.HasPrefix(build.image, want+".") {
			t.Errorf("build stage FROM %s, want %s to match go.mod", build.image, want)
		}
		if bc.stage.image != build.image {
			t.Errorf("go build runs in the stage FROM %s, want the build stage", bc.stage.image)
		}
		if bc.env["CGO_ENABLED"] != "0" {
			t.Errorf("go build runs with CGO_ENABLED=%q, want 0", bc.env["CGO_ENABLED"])
		}
		if !slices.Contains(bc.args, "-trimpath") {
			t.Errorf("go build %q lacks -trimpath", bc.args)
		}
		if bc.out == "" || !strings.HasSuffix(bc.out, "/monitor") {
			t.Errorf("go build writes %q, want -o …/monitor", bc.out)
		}
		if last := bc.args[len(bc.args)-1]; last != "." {
			t.Errorf("go build builds %q, want the main package at the root (.)", last)
		}
	})

	t.Run("runtime stage", func(t *testing.T) {
		if final.image == build.image {
			t.Errorf("runtime stage is FROM %s like the build stage", final.image)
		}
		users := final.all("USER")
		if len(users) == 0 {
			t.Fatal("runtime stage has no USER, so it runs as root")
		}
		user, _, _ := strings.Cut(users[len(users)-1].args, ":")
		if user == "" || user == "root" || user == "0" {
			t.Errorf("runtime stage runs as USER %q, want a non-root user", users[len(users)-1].args)
		}
		var binary string
		for _, c := range final.all("COPY") {
			w := strings.Fields(c.args)
			from := slices.IndexFunc(w, func(s string) bool { return strings.HasPrefix(s, "--from=") })
			if from >= 0 && len(w) >= 3 && slices.Contains(w, bc.out) {
				src := strings.TrimPrefix(w[from], "--from=")
				if src != build.name && src != "0" {
					t.Errorf("Dockerfile:%d copies the binary from %q, want the build stage %q", c.line, src, build.name)
				}
				binary = w[len(w)-1]
			}
		}
		if binary == "" {
			t.Fatalf("runtime stage never copies %s from the build stage", bc.out)
		}
		ep := final.all("ENTRYPOINT")
		if len(ep) != 1 {
			t.Fatalf("runtime stage has %d ENTRYPOINTs, want 1", len(ep))
		}
		var entry []string
		if err := json.Unmarshal([]byte(ep[0].args), &entry); err != nil || len(entry) == 0 {
			t.Fatalf("ENTRYPOINT %s is not the exec (JSON) form, which passes signals to monitor: %v", ep[0].args, err)
		}
		if entry[0] != binary && !(entry[0] == "monitor" && filepath.Dir(binary) == "/usr/local/bin") {
			t.Errorf("ENTRYPOINT runs %q, but the binary is copied to %s", entry[0], binary)
		}
		exposed := false
		for _, e := range final.all("EXPOSE") {
			exposed = exposed || slices.Contains(strings.Fields(e.args), "8888") || slices.Contains(strings.Fields(e.args), "8888/tcp")
		}
		if !exposed {
			t.Error("runtime stage does not EXPOSE 8888")
		}
		hc := final.all("HEALTHCHECK")
		if len(hc) != 1 || !strings.Contains(hc[0].args, ":8888/healthz") {
			t.Errorf("runtime stage HEALTHCHECK %v, want one that asks :8888/healthz", hc)
		}
	})

	t.Run("dockerignore", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Fields(string(data))
		for _, want := range []string{".git", "bin", "data"} {
			if !slices.Contains(lines, want) {
				t.Errorf(".dockerignore does not exclude %s", want)
			}
		}
		for _, bad := range []string{"*", "*.go", "go.mod", "go.sum", "**/*.go"} {
			if slices.Contains(lines, bad) {
				t.Errorf(".dockerignore excludes %s, which go build needs", bad)
			}
		}
	})
}

// TestDockerBuildCommand runs the Dockerfile's go build command here and checks that it
// makes a static binary that starts.
func TestDockerBuildCommand(t *testing.T) {
	// -short leaves out the build, except under MONITOR_TEST_REAL=1, which runs everything.
	if testing.Short() && !testenv.Real() {
		t.Skip("builds the whole binary")
	}
	if runtime.GOOS != "linux" {
		testenv.Missing(t, "the image is linux; its binary is checked on linux, not %s", runtime.GOOS)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	bc := dockerBuildCommand(t, parseDockerfile(t, "Dockerfile"))
	out := filepath.Join(t.TempDir(), "monitor")
	args := slices.Clone(bc.args[1:])
	args[slices.Index(args, "-o")+1] = out

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = repoRoot
	cmd.Env = os.Environ()
	for k, v := range bc.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, msg)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: it is dynamically linked", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("binary imports shared libraries %v (%v)", libs, err)
	}

	info, err := buildinfo.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("binary built with CGO_ENABLED=%q -trimpath=%q, want 0 and true", settings["CGO_ENABLED"], settings["-trimpath"])
	}

	help := exec.CommandContext(ctx, out, "--help")
	help.Dir = t.TempDir()
	msg, err := help.CombinedOutput()
	if err != nil {
		t.Fatalf("monitor --help: %v\n%s", err, msg)
	}
	for _, role := range []string{"usage: monitor", "all", "api", "worker", "scheduler", "migrate"} {
		if !strings.Contains(string(msg), role) {
			t.Errorf("monitor --help does not mention %q:\n%s", role, msg)
		}
	}
}

// words is a compose command or healthcheck test, in list or string form.
type words []string

func (w *words) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*w = strings.Fields(n.Value)
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return fmt.Errorf("command: %w", err)
	}
	*w = l
	return nil
}

// environment is a compose environment in map or KEY=value list form.
type environment map[string]string

func (e *environment) UnmarshalYAML(n *yaml.Node) error {
	*e = environment{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return fmt.Errorf("environment: %w", err)
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
		return nil
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return fmt.Errorf("environment: %w", err)
	}
	for k, v := range m {
		if v == nil {
			v = ""
		}
		(*e)[k] = fmt.Sprint(v)
	}
	return nil
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     words       `yaml:"command"`
	Environment environment `yaml:"environment"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Ports    []string `yaml:"ports"`
	Profiles []string `yaml:"profiles"`
	Deploy   *struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Volumes     []string `yaml:"volumes"`
	Restart     string   `yaml:"restart"`
	Healthcheck *struct {
		Test    words `yaml:"test"`
		Disable bool  `yaml:"disable"`
	} `yaml:"healthcheck"`
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

// interpolation matches compose's ${VAR}, ${VAR:-default} and ${VAR:?message}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// composeVars stand in for what an operator exports before docker compose up.
var composeVars = map[string]string{
	"MONITOR_OPERATOR_TOKEN": "0123456789abcdef0123",
	"MYSQL_PASSWORD":         "s3cretPassw0rd",
	"GRAFANA_ADMIN_PASSWORD": "gr4fanaPassw0rd",
}

// clusterVars are what an operator exports to run on the cluster profile, as the
// compose file's header says.
var clusterVars = map[string]string{
	"MONITOR_OPERATOR_TOKEN": composeVars["MONITOR_OPERATOR_TOKEN"],
	"MYSQL_PASSWORD":         composeVars["MYSQL_PASSWORD"],
	"MONITOR_REDIS_ADDR":     "",
	"MONITOR_REDIS_CLUSTER":  "redis-node-1:6379,redis-node-2:6379,redis-node-3:6379",
}

// interpolate substitutes composeVars the way docker compose would.
func interpolate(t *testing.T, s string) string {
	t.Helper()
	return interpolateWith(t, composeVars, s)
}

// interpolateWith substitutes vars the way docker compose would: ${V-d} takes d only
// when V is unset, ${V:-d} also when it is empty.
func interpolateWith(t *testing.T, vars map[string]string, s string) string {
	t.Helper()
	s = interpolation.ReplaceAllStringFunc(s, func(m string) string {
		g := interpolation.FindStringSubmatch(m)
		if v, ok := vars[g[1]]; ok && (v != "" || !strings.HasPrefix(g[2], ":")) {
			return v
		}
		if strings.HasSuffix(g[2], "-") {
			return g[3]
		}
		if strings.HasSuffix(g[2], "?") {
			t.Errorf("compose requires ${%s}, which the test does not know", g[1])
		}
		return ""
	})
	return strings.ReplaceAll(s, "$$", "$")
}

// configKeys returns the MONITOR_ names of every field of config.Config.
func configKeys() map[string]bool {
	keys := map[string]bool{}
	rt := reflect.TypeFor[config.Config]()
	for i := range rt.NumField() {
		if tag := rt.Field(i).Tag.Get("yaml"); tag != "" && tag != "-" {
			keys[config.EnvPrefix+strings.ToUpper(tag)] = true
		}
	}
	return keys
}

// namedVolume returns the volume name of a "name:/path" mount, or "" for a bind mount.
func namedVolume(mount string) (name, target string) {
	src, rest, ok := strings.Cut(mount, ":")
	if !ok {
		return "", mount
	}
	target, _, _ = strings.Cut(rest, ":")
	if strings.ContainsAny(src, "/.~$") {
		return "", target
	}
	return src, target
}

func TestCompose(t *testing.T) {
	data, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(data, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	svc := func(t *testing.T, name string) composeService {
		t.Helper()
		s, ok := cf.Services[name]
		if !ok {
			t.Fatalf("no service %q", name)
		}
		return s
	}
	mountAt := func(t *testing.T, s composeService, target string) {
		t.Helper()
		for _, m := range s.Volumes {
			if name, tgt := namedVolume(m); tgt == target && name != "" {
				if _, ok := cf.Volumes[name]; !ok {
					t.Errorf("volume %q is not declared under volumes:", name)
				}
				return
			}
		}
		t.Errorf("nothing keeps %s on a named volume (volumes: %q)", target, s.Volumes)
	}
	healthy := func(t *testing.T, s composeService) {
		t.Helper()
		if s.Healthcheck == nil || s.Healthcheck.Disable || len(s.Healthcheck.Test) == 0 {
			t.Error("no healthcheck, so nothing can wait for it to be healthy")
		}
	}

	// boundedNoEviction checks that a Redis has a maxmemory and refuses writes past it
	// instead of evicting queued reports: the API sheds at MONITOR_REDIS_SHED_SHARE of
	// maxmemory, which it cannot do without one.
	boundedNoEviction := func(t *testing.T, name string, s composeService) {
		t.Helper()
		flag := func(f string) string {
			if i := slices.Index(s.Command, f); i >= 0 && i+1 < len(s.Command) {
				return interpolate(t, s.Command[i+1])
			}
			return ""
		}
		if m := flag("--maxmemory"); !regexp.MustCompile(`^[1-9][0-9]*(b|kb|mb|gb)?$`).MatchString(strings.ToLower(m)) {
			t.Errorf("%s: --maxmemory %q, want a size, so that the API can shed before Redis is full", name, m)
		}
		if p := flag("--maxmemory-policy"); p != "noeviction" {
			t.Errorf("%s: --maxmemory-policy %q, want noeviction: evicting would drop acknowledged reports", name, p)
		}
	}

	t.Run("redis", func(t *testing.T) {
		s := svc(t, "redis")
		if !strings.HasPrefix(s.Image, "redis:") {
			t.Errorf("image %q, want redis:…", s.Image)
		}
		if i := slices.Index(s.Command, "--appendonly"); i < 0 || i+1 >= len(s.Command) || s.Command[i+1] != "yes" {
			t.Errorf("command %q does not turn AOF on (--appendonly yes)", s.Command)
		}
		boundedNoEviction(t, "redis", s)
		mountAt(t, s, "/data")
		healthy(t, s)
	})

	var mysqlUser, mysqlPassword string
	t.Run("mysql", func(t *testing.T) {
		s := svc(t, "mysql")
		if !strings.HasPrefix(s.Image, "mysql:8") {
			t.Errorf("image %q, want mysql:8…", s.Image)
		}
		if !slices.Contains(s.Command, "--local-infile=1") {
			t.Errorf("command %q does not allow LOAD DATA LOCAL INFILE (--local-infile=1), the workers' way of writing", s.Command)
		}
		if db := s.Environment["MYSQL_DATABASE"]; db != "monitor" {
			t.Errorf("MYSQL_DATABASE=%q, want monitor", db)
		}
		mysqlUser = cmp.Or(s.Environment["MYSQL_USER"], "root")
		if mysqlUser == "root" {
			mysqlPassword = interpolate(t, s.Environment["MYSQL_ROOT_PASSWORD"])
		} else {
			mysqlPassword = interpolate(t, s.Environment["MYSQL_PASSWORD"])
		}
		if mysqlPassword == "" {
			t.Errorf("user %s has no password", mysqlUser)
		}
		mountAt(t, s, "/var/lib/mysql")
		healthy(t, s)
	})

	known := configKeys()
	for name, s := range cf.Services {
		for k := range s.Environment {
			if strings.HasPrefix(k, config.EnvPrefix) && !known[k] {
				t.Errorf("service %s sets %s, which config.Config does not know", name, k)
			}
		}
	}

	roles := []struct {
		name      string
		dependsOn map[string]string
		http      bool
	}{
		{"migrate", map[string]string{"mysql": "service_healthy"}, false},
		{"api", map[string]string{"migrate": "service_completed_successfully", "redis": "service_healthy", "mysql": "service_healthy"}, true},
		{"worker", map[string]string{"migrate": "service_completed_successfully", "redis": "service_healthy", "mysql": "service_healthy"}, false},
		{"scheduler", map[string]string{"migrate": "service_completed_successfully", "redis": "service_healthy", "mysql": "service_healthy"}, false},
	}
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			s := svc(t, r.name)
			if s.Build == nil || s.Build.Context != repoRoot || s.Build.Dockerfile != "docker/Dockerfile" {
				t.Errorf("build %+v, want context .. and dockerfile docker/Dockerfile", s.Build)
			} else if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("build: %v", err)
			}
			if !slices.Equal(s.Command, []string{r.name}) {
				t.Errorf("command %q, want [%s]", s.Command, r.name)
			}
			for dep, cond := range r.dependsOn {
				if got := s.DependsOn[dep].Condition; got != cond {
					t.Errorf("depends_on %s: condition %q, want %q", dep, got, cond)
				}
			}
			if r.name == "migrate" && s.Restart != "no" {
				t.Errorf("restart %q, want \"no\": migrate runs once", s.Restart)
			}
			// The image's HEALTHCHECK asks :8888/healthz, which the API serves; worker and
			// scheduler serve /healthz on MONITOR_METRICS_ADDR instead; migrate exits.
			disabled := s.Healthcheck != nil && s.Healthcheck.Disable
			switch {
			case r.name == "migrate" && !disabled:
				t.Error("migrate runs once: its healthcheck must be disabled")
			case r.name != "migrate" && disabled:
				t.Error("healthcheck disabled")
			case r.name == "worker" || r.name == "scheduler":
				port := strings.TrimPrefix(s.Environment["MONITOR_METRICS_ADDR"], ":")
				if port == "" || s.Healthcheck == nil || !strings.Contains(strings.Join(s.Healthcheck.Test, " "), ":"+port+"/healthz") {
					t.Errorf("healthcheck %+v does not probe /healthz on MONITOR_METRICS_ADDR %q", s.Healthcheck, port)
				}
			}
			// Replicas publish no host port (two cannot share one): the proxy does.
			if r.http && len(s.Ports) != 0 {
				t.Errorf("ports %q: the api replicas must leave the host port to the proxy", s.Ports)
			}
			if r.name != "migrate" && (s.Deploy == nil || s.Deploy.Replicas != 2) {
				t.Errorf("deploy %+v, want two replicas", s.Deploy)
			}

			env := s.Environment
			if got := interpolate(t, env["MONITOR_REDIS_ADDR"]); got != "redis:6379" {
				t.Errorf("MONITOR_REDIS_ADDR=%q, want redis:6379 by default", got)
			}
			// With the cluster profile's variables the role runs on the cluster's nodes.
			var clusterEnv []string
			for k, v := range env {
				clusterEnv = append(clusterEnv, k+"="+interpolateWith(t, clusterVars, v))
			}
			if cfg, err := config.Load("", clusterEnv); err != nil {
				t.Errorf("on the cluster profile the service's config does not load: %v", err)
			} else if !slices.Equal(cfg.RedisClusterAddrs(), strings.Split(clusterVars["MONITOR_REDIS_CLUSTER"], ",")) || cfg.RedisAddr != "" {
				t.Errorf("on the cluster profile: addr %q, cluster %v", cfg.RedisAddr, cfg.RedisClusterAddrs())
			}
			if tok := env["MONITOR_OPERATOR_TOKEN"]; !strings.HasPrefix(tok, "${MONITOR_OPERATOR_TOKEN:?") {
				t.Errorf("MONITOR_OPERATOR_TOKEN=%q, want ${MONITOR_OPERATOR_TOKEN:?…} so compose refuses to start without one", tok)
			}
			var environ []string
			for k, v := range env {
				environ = append(environ, k+"="+interpolate(t, v))
			}
			cfg, err := config.Load("", environ)
			if err != nil {
				t.Fatalf("the service's config does not load: %v", err)
			}
			dsn, err := mysql.ParseDSN(cfg.MySQLDSN)
			if err != nil {
				t.Fatalf("MONITOR_MYSQL_DSN: %v", err)
			}
			if dsn.Net != "tcp" || dsn.Addr != "mysql:3306" || dsn.DBName != "monitor" || !dsn.ParseTime {
				t.Errorf("MONITOR_MYSQL_DSN reaches %s(%s)/%s parseTime=%v, want tcp(mysql:3306)/monitor parseTime=true", dsn.Net, dsn.Addr, dsn.DBName, dsn.ParseTime)
			}
			if dsn.User != mysqlUser {
				t.Errorf("MONITOR_MYSQL_DSN logs in as %s, but the mysql service creates %s", dsn.User, mysqlUser)
			} else if dsn.Passwd != mysqlPassword {
				t.Errorf("MONITOR_MYSQL_DSN has another password than the mysql service gives %s", mysqlUser)
			}
		})
	}

	t.Run("proxy", func(t *testing.T) {
		s := svc(t, "proxy")
		if !strings.HasPrefix(s.Image, "nginx:") {
			t.Errorf("image %q, want nginx:…", s.Image)
		}
		if !slices.ContainsFunc(s.Ports, func(p string) bool { return strings.HasSuffix(p, ":8888") }) {
			t.Errorf("ports %q do not publish 8888", s.Ports)
		}
		if got := s.DependsOn["api"].Condition; got != "service_healthy" {
			t.Errorf("depends_on api: %q, want service_healthy", got)
		}
		var conf string
		for _, m := range s.Volumes {
			src, rest, _ := strings.Cut(m, ":")
			if strings.HasPrefix(rest, "/etc/nginx/nginx.conf") {
				b, err := os.ReadFile(src)
				if err != nil {
					t.Fatalf("the proxy's config: %v", err)
				}
				conf = string(b)
			}
		}
		for _, want := range []string{"listen 8888", "http://api:8888", "resolver 127.0.0.11", "proxy_next_upstream off"} {
			if !strings.Contains(conf, want) {
				t.Errorf("nginx.conf lacks %q", want)
			}
		}
		healthy(t, s)
	})

	t.Run("cluster profile", func(t *testing.T) {
		var nodes []string
		var create string
		for name, s := range cf.Services {
			if !slices.Contains(s.Profiles, "cluster") {
				continue
			}
			cmd := strings.Join(s.Command, " ")
			switch {
			case strings.Contains(cmd, "--cluster-enabled yes"):
				nodes = append(nodes, name)
				if !strings.Contains(cmd, "--cluster-announce-hostname "+name) {
					t.Errorf("%s does not announce its own name: %s", name, cmd)
				}
				boundedNoEviction(t, name, s)
				healthy(t, s)
			case strings.Contains(cmd, "--cluster create"):
				create = cmd
			}
		}
		if len(nodes) < 3 || create == "" {
			t.Fatalf("the cluster profile has nodes %v and create command %q: want three nodes and redis-cli --cluster create", nodes, create)
		}
		for _, a := range strings.Split(clusterVars["MONITOR_REDIS_CLUSTER"], ",") {
			host, _, _ := strings.Cut(a, ":")
			if !slices.Contains(nodes, host) || !strings.Contains(create, a) {
				t.Errorf("MONITOR_REDIS_CLUSTER names %s, which is not a node the profile creates the cluster from", a)
			}
		}
	})

	// The rest of what docker compose config rejects: a depends_on or a named volume that
	// points at nothing, and a required ${VAR:?…} in any value that composeVars (what the
	// operator exports) does not set.
	t.Run("references", func(t *testing.T) {
		var root yaml.Node
		if err := yaml.Unmarshal(data, &root); err != nil {
			t.Fatal(err)
		}
		var values func(n *yaml.Node)
		values = func(n *yaml.Node) {
			if n.Kind == yaml.ScalarNode {
				interpolate(t, n.Value)
			}
			for _, c := range n.Content {
				values(c)
			}
		}
		values(&root)
		for name, s := range cf.Services {
			for dep := range s.DependsOn {
				if _, ok := cf.Services[dep]; !ok {
					t.Errorf("service %s depends on %s, which is not a service", name, dep)
				}
			}
			for _, m := range s.Volumes {
				if vol, _ := namedVolume(m); vol != "" {
					if _, ok := cf.Volumes[vol]; !ok {
						t.Errorf("service %s mounts volume %q, which is not declared under volumes:", name, vol)
					}
				}
			}
		}
	})

	// docker compose config is the compose plugin's own lint of the file. Neither CI nor the
	// developers' machines have that plugin (Debian's packages do not bring it) or a Docker
	// engine, so the Go checks above stand in for it, and this check runs only when asked
	// for with MONITOR_TEST_DOCKER=1. Once asked for, a missing CLI or plugin fails it.
	t.Run("docker compose config", func(t *testing.T) {
		if os.Getenv("MONITOR_TEST_DOCKER") != "1" {
			t.Skip("opt-in with MONITOR_TEST_DOCKER=1 (needs the docker CLI and its compose plugin); the Go checks in TestCompose parse and check the file without them")
		}
		docker, err := exec.LookPath("docker")
		if err != nil {
			t.Fatalf("MONITOR_TEST_DOCKER=1 but the docker CLI is not installed: %v", err)
		}
		if msg, err := exec.Command(docker, "compose", "version").CombinedOutput(); err != nil {
			t.Fatalf("MONITOR_TEST_DOCKER=1 but the docker compose plugin is not installed: %v\n%s", err, msg)
		}
		cmd := exec.Command(docker, "compose", "-f", "docker-compose.yml", "config", "--quiet")
		cmd.Env = os.Environ()
		for k, v := range composeVars {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker compose config: %v\n%s", err, msg)
		}
	})
}
