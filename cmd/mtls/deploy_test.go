package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// flagNames returns the long names of the flags of `mtls proxy server`.
func proxyServerFlagNames() map[string]bool {
	names := map[string]bool{"log-format": true, "log-level": true}
	for _, f := range proxyFlags(true) {
		for _, n := range f.Names() {
			names[n] = true
		}
	}
	return names
}

// The systemd unit runs the proxy with flags it has, keeps the renewal file
// in a writable state directory, and requires permits (the default).
func TestDeploySystemdProxyUnit(t *testing.T) {
	data, err := os.ReadFile("../../deploy/systemd/mtls-proxy.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(string(data), "\\\n", " ")
	var exec string
	for _, l := range strings.Split(unit, "\n") {
		if strings.HasPrefix(l, "ExecStart=") {
			exec = l
		}
	}
	if exec == "" {
		t.Fatal("no ExecStart=")
	}
	names := proxyServerFlagNames()
	for _, m := range regexp.MustCompile(`--([a-z][a-z0-9-]*)`).FindAllStringSubmatch(exec, -1) {
		if !names[m[1]] {
			t.Errorf("ExecStart uses --%s, which mtls proxy server does not have", m[1])
		}
	}
	for _, want := range []string{"--renewal ${STATE_DIRECTORY}/", "--listen systemd:mtls-proxy"} {
		if !strings.Contains(exec, want) {
			t.Errorf("ExecStart lacks %q: %s", want, exec)
		}
	}
	if strings.Contains(exec, "--permits optional") || strings.Contains(exec, "--permits off") {
		t.Errorf("the unit does not require permits: %s", exec)
	}
	if !regexp.MustCompile(`(?m)^StateDirectory=mtls-proxy$`).MatchString(unit) {
		t.Error("no StateDirectory=mtls-proxy: --renewal rewrites its file there")
	}
}

// The Kubernetes sidecar: liveness on the process, readiness on the path
// to the service, and flags the proxy has.
func TestDeployKubernetesSidecar(t *testing.T) {
	data, err := os.ReadFile("../../deploy/kubernetes/sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := string(data)
	for _, probe := range []struct{ name, path string }{{"livenessProbe", "/livez"}, {"readinessProbe", "/healthz"}} {
		m := regexp.MustCompile(probe.name + `:\s*\n(?:\s*#.*\n)*\s*httpGet: \{path: (\S+),`).FindStringSubmatch(y)
		if m == nil || m[1] != probe.path {
			t.Errorf("%s: %v, want path %s", probe.name, m, probe.path)
		}
	}
	names := proxyServerFlagNames()
	for _, m := range regexp.MustCompile(`(?m)^\s*- --([a-z][a-z0-9-]*)`).FindAllStringSubmatch(y, -1) {
		if !names[m[1]] {
			t.Errorf("sidecar.yaml uses --%s, which mtls proxy server does not have", m[1])
		}
	}
}

// The Dockerfile's example does not point --target at the proxy's own
// container: it runs in the service's network namespace.
func TestDeployDockerfileExample(t *testing.T) {
	data, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "--target 127.0.0.1") && !strings.Contains(string(data), "--network container:") {
		t.Error("the Dockerfile example forwards to 127.0.0.1 of the proxy's own container")
	}
}
