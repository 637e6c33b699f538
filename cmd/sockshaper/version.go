package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and revision name a release build; set them with
//
//	go build -ldflags "-X main.version=1.2.0 -X main.revision=$(git rev-parse HEAD)"
//
// Left empty (a plain `go build`), they come from what the Go toolchain stamps into
// the binary: the module version and the VCS commit of the tree it was built from.
// They are package variables only because -X can set nothing else.
var (
	version  string
	revision string
)

// buildInfo names the binary in `sockshaper version`, the "serving" log line and
// sockshaper_build_info.
type buildInfo struct {
	Version   string // release version, module version, or "devel"
	Revision  string // VCS commit, or "unknown"
	Time      string // commit time (RFC 3339), or ""
	Modified  bool   // built from a tree with uncommitted changes
	GoVersion string
}

// currentBuild is the build of this binary.
func currentBuild() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(version, revision, bi)
}

// describeBuild merges what -ldflags set with what the toolchain stamped (bi may be
// nil): an -X value wins, so a release names itself whatever tree it was built from.
func describeBuild(ldVersion, ldRevision string, bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: "devel", Revision: "unknown", GoVersion: runtime.Version()}
	if bi != nil {
		b.GoVersion = bi.GoVersion
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			b.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if ldVersion != "" {
		b.Version = ldVersion
	}
	if ldRevision != "" {
		b.Revision, b.Time, b.Modified = ldRevision, "", false
	}
	return b
}

// String is the line `sockshaper version` prints, e.g.
// "sockshaper 1.2.0 (revision 0f594b9…, 2026-11-02T10:00:00Z) go1.26.8 linux/amd64".
func (b buildInfo) String() string {
	rev := b.Revision
	if b.Time != "" {
		rev += ", " + b.Time
	}
	if b.Modified {
		rev += ", modified"
	}
	return fmt.Sprintf("sockshaper %s (revision %s) %s %s/%s", b.Version, rev, b.GoVersion, runtime.GOOS, runtime.GOARCH)
}

// printVersion is the version command.
func printVersion(inv invocation) int {
	fmt.Fprintln(inv.stdout, currentBuild())
	return 0
}
