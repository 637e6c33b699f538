package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/sockshaper/sockshaper/internal/proctest"
)

// buildah drives buildah on a storage of the test's own (vfs, chroot isolation: no
// daemon, no overlay mounts, nothing left on the machine afterwards).
type buildah struct {
	t    *testing.T
	bin  string
	root string
}

func newBuildah(t *testing.T) *buildah {
	requireRoot(t)
	b := &buildah{t: t, bin: requireTool(t, "buildah", "apt-get install buildah"), root: t.TempDir()}
	t.Cleanup(func() { tryTool("", b.bin, b.args("rm", "--all")...) })
	return b
}

func (b *buildah) args(args ...string) []string {
	return append([]string{"--root", filepath.Join(b.root, "storage"), "--runroot", filepath.Join(b.root, "run"),
		"--storage-driver", "vfs"}, args...)
}

func (b *buildah) run(stdin string, args ...string) string {
	b.t.Helper()
	return strings.TrimSpace(runTool(b.t, stdin, b.bin, b.args(args...)...))
}

func (b *buildah) try(stdin string, args ...string) (string, error) {
	return tryTool(stdin, b.bin, b.args(args...)...)
}

// standIn commits a local image under name from a scratch container that fill
// populates, so that the Dockerfile's FROM lines resolve without a registry.
func (b *buildah) standIn(name string, fill func(root string), config ...string) {
	b.t.Helper()
	ctr := b.run("", "from", "scratch")
	fill(b.run("", "mount", ctr))
	b.run("", append(append([]string{"config"}, config...), ctr)...)
	b.run("", "commit", "-q", "--rm", ctr, name)
}

// TestImageBuildsAndRuns builds the Dockerfile with buildah on stand-ins for its two
// base images (this machine reaches no image registry): the golang one is the host's
// Go toolchain with busybox as the shell, the distroless one a scratch image with
// distroless' users. It then runs what the README promises: the image's version and
// passwd, the proxy as uid 65532 with a mounted config, the image's own
// HEALTHCHECK command, a SOCKS5 session through it, and the refusal of a users file
// that uid 65532 cannot read.
func TestImageBuildsAndRuns(t *testing.T) {
	b := newBuildah(t)
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(readRepoFile(t, "Dockerfile"), -1)
	if len(froms) != 2 {
		t.Fatalf("FROM lines: %v; the stand-ins below expect golang, then distroless", froms)
	}
	b.standIn(froms[0][1], goStandIn(t, b), goEnv(t)...)
	b.standIn(froms[1][1], distrolessStandIn(t), "--user", "65532", "--workingdir", "/home/nonroot")

	rev := strings.TrimSpace(runTool(t, "", "git", "-C", repoRoot, "rev-parse", "HEAD"))
	b.run("", "bud", "--isolation", "chroot", "--format", "docker", "--pull-never", "--layers=false",
		"--build-arg", "VERSION=9.9.9-test", "--build-arg", "REVISION="+rev, "-t", "localhost/sockshaper:test", repoRoot)
	var inspect struct {
		Docker struct {
			Config struct {
				User        string
				Entrypoint  []string
				Cmd         []string
				Healthcheck struct{ Test []string }
			} `json:"config"`
		}
	}
	if err := json.Unmarshal([]byte(b.run("", "inspect", "--type", "image", "localhost/sockshaper:test")), &inspect); err != nil {
		t.Fatal(err)
	}
	cfg := inspect.Docker.Config
	if cfg.User != "65532:65532" || len(cfg.Healthcheck.Test) < 3 || cfg.Healthcheck.Test[0] != "CMD" {
		t.Fatalf("image config: %+v", cfg)
	}

	c := &container{b: b, id: b.run("", "from", "-q", "--pull-never", "localhost/sockshaper:test"), etc: t.TempDir()}
	mkdir(t, c.etc, 0o755) // the container's uid 65532 must reach the files
	if out, err := c.execUntil("", "sockshaper 9.9.9-test (revision "+rev+")", "/usr/local/bin/sockshaper", "version"); err != nil {
		t.Errorf("version in the image: %v %q", err, out)
	}
	if out, err := c.execUntil("secret\n", "alice:$2y$", "/usr/local/bin/sockshaper", "passwd", "alice"); err != nil {
		t.Errorf("passwd in the image: %v %q", err, out)
	}
	runProxyInImage(t, c, cfg.Healthcheck.Test[1:])
}

// container is a working container of the built image with a host folder, etc,
// mounted over /etc/sockshaper as compose mounts the config and users file.
type container struct {
	b   *buildah
	id  string
	etc string
}

// command returns the buildah command that runs args in the container, as the image's
// user unless user is set.
func (c *container) command(user string, args ...string) *exec.Cmd {
	run := []string{"run", "--isolation", "chroot", "-v", c.etc + ":/etc/sockshaper:ro"}
	if user != "" {
		run = append(run, "--user", user)
	}
	return exec.Command(c.b.bin, c.b.args(append(append(run, c.id, "--"), args...)...)...)
}

// execUntil runs args in the container until the output contains want, at most
// three times, and returns the last output and error (non-nil when want never
// showed). Retrying is for buildah 1.28's chroot runtime, which now and then loses
// the output of a process that exits at once; the exit status is always kept.
func (c *container) execUntil(stdin, want string, args ...string) (string, error) {
	var out string
	var err error
	for range 3 {
		if out, err = c.exec(stdin, args...); strings.Contains(out, want) {
			return out, err
		}
	}
	if err == nil {
		err = fmt.Errorf("no %q in the output", want)
	}
	return out, err
}

// exec runs args in the container and returns the combined output.
func (c *container) exec(stdin string, args ...string) (string, error) {
	cmd := c.command("", args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// goEnv is the stand-in golang image's environment: the official image's, plus the
// host's module proxy settings (the build downloads modules).
func goEnv(t *testing.T) []string {
	env := []string{"--env", "PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--env", "GOPATH=/go", "--env", "GOTOOLCHAIN=local"}
	for _, key := range []string{"GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE"} {
		v := strings.TrimSpace(runTool(t, "", "go", "env", key))
		env = append(env, "--env", key+"="+v)
	}
	return env
}

// goStandIn fills a root with the host's Go toolchain, busybox as /bin/sh and the CA
// certificates.
func goStandIn(t *testing.T, b *buildah) func(string) {
	return func(root string) {
		goroot := strings.TrimSpace(runTool(t, "", "go", "env", "GOROOT"))
		busybox := requireTool(t, "busybox", "apt-get install busybox-static")
		for _, d := range []string{"bin", "usr/local", "etc/ssl/certs", "go", "root"} {
			mkdir(t, filepath.Join(root, d), 0o755)
		}
		mkdir(t, filepath.Join(root, "tmp"), 0o1777)
		runTool(t, "", "cp", "-a", goroot, filepath.Join(root, "usr/local/go"))
		runTool(t, "", "cp", busybox, filepath.Join(root, "bin/busybox"))
		runTool(t, "", "cp", "/etc/ssl/certs/ca-certificates.crt", filepath.Join(root, "etc/ssl/certs/"))
		write(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n", 0o644)
		write(t, filepath.Join(root, "etc/group"), "root:x:0:\n", 0o644)
		for _, applet := range []string{"sh", "mkdir", "cp", "rm", "ls", "cat"} {
			if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// distrolessStandIn fills a root as gcr.io/distroless/static-debian12:nonroot is:
// no shell, users root, nobody and nonroot (65532), CA certificates, /tmp.
func distrolessStandIn(t *testing.T) func(string) {
	return func(root string) {
		for _, d := range []string{"etc/ssl/certs", "home/nonroot"} {
			mkdir(t, filepath.Join(root, d), 0o755)
		}
		mkdir(t, filepath.Join(root, "tmp"), 0o1777)
		if err := os.Chown(filepath.Join(root, "home/nonroot"), 65532, 65532); err != nil {
			t.Fatal(err)
		}
		runTool(t, "", "cp", "/etc/ssl/certs/ca-certificates.crt", filepath.Join(root, "etc/ssl/certs/"))
		write(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/sbin/nologin\n"+
			"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n", 0o644)
		write(t, filepath.Join(root, "etc/group"), "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n", 0o644)
	}
}

func mkdir(t *testing.T, path string, mode os.FileMode) {
	if err := os.MkdirAll(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// runProxyInImage runs the image's proxy on this host's network (chroot isolation)
// as uid 65532 with a config allowing a local target, probes it with the image's
// HEALTHCHECK command and relays a SOCKS5 session through it.
func runProxyInImage(t *testing.T, c *container, healthcheck []string) {
	dir := c.etc
	listen, admin := freeAddr(t), freeAddr(t)
	write(t, filepath.Join(dir, "sockshaper.yaml"), fmt.Sprintf(`listen: %q
admin_listen: %q
auth: {users_file: users.htpasswd}
access:
  client_networks: [127.0.0.0/8]
  deny_destinations: [private, link-local, metadata]
`, listen, admin), 0o644)
	hash, err := c.execUntil("secret\n", "alice:", "/usr/local/bin/sockshaper", "passwd", "alice")
	if err != nil {
		t.Fatalf("passwd: %v %s", err, hash)
	}
	hash = hash[strings.Index(hash, "alice:"):]
	hash, _, _ = strings.Cut(hash, "\n")
	users := filepath.Join(dir, "users.htpasswd")
	write(t, users, hash+"\n", 0o600) // root's, unreadable to uid 65532

	start := func() *exec.Cmd {
		return c.command("65532:65532", "/usr/local/bin/sockshaper", "-config", "/etc/sockshaper/sockshaper.yaml", "-log-format", "json")
	}
	for try := 1; ; try++ { // see execUntil: the output may be lost, the exit status not
		out, err := start().CombinedOutput()
		if err == nil {
			t.Fatalf("the proxy ran with a users file that uid 65532 cannot read:\n%s", out)
		}
		if strings.Contains(string(out), "users.htpasswd: permission denied") {
			break
		}
		if try == 3 {
			t.Errorf("users file unreadable to uid 65532: %v; no \"permission denied\" in\n%s", err, out)
			break
		}
	}

	write(t, users, hash+"\n", 0o644)
	proxy := start()
	var log strings.Builder
	proxy.Stdout, proxy.Stderr = &log, &log
	proctest.DieWithParent(proxy)
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		proxy.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { proxy.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			proxy.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("proxy log:\n%s", log.String())
		}
	}()
	waitHealthy(t, c, healthcheck)
	socksRoundTrip(t, listen)
}

// waitHealthy runs the image's HEALTHCHECK command until it exits 0.
func waitHealthy(t *testing.T, c *container, healthcheck []string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.exec("", healthcheck...)
		if err == nil && strings.Contains(out, "ok: ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("HEALTHCHECK %v never passed: %v\n%s", healthcheck, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// socksRoundTrip relays one message through the proxy to a local echo server.
func socksRoundTrip(t *testing.T, proxyAddr string) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	d, err := xproxy.SOCKS5("tcp", proxyAddr, &xproxy.Auth{User: "alice", Password: "secret"}, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Dial("tcp", echo.Addr().String())
	if err != nil {
		t.Fatalf("SOCKS5 through the image's proxy: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := []byte("through the container")
	got := make([]byte, len(msg))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
		t.Errorf("echo %q, %v", got, err)
	}
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
