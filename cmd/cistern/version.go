package main

import (
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// empty, the module version and VCS revision Go recorded are used. It is
// the one package variable here, because the linker can set only those.
var version string

// buildVersion is the version -version prints and start-up logs.
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
		if rev != "" {
			v += "+" + rev[:min(12, len(rev))]
			if dirty {
				v += "-dirty"
			}
		}
	}
	return v + " " + bi.GoVersion
}
