package engine

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// applyChanges follows docker's Dockerfile rules for each instruction.
func TestApplyChanges(t *testing.T) {
	base := func() v1.Config {
		return v1.Config{Env: []string{"PATH=/bin", "A=old"}, Cmd: []string{"sh"}, WorkingDir: "/srv"}
	}
	for _, c := range []struct {
		changes []string
		check   func(v1.Config) bool
	}{
		{[]string{`CMD ["echo", "a b"]`}, func(c v1.Config) bool { return reflect.DeepEqual(c.Cmd, []string{"echo", "a b"}) }},
		{[]string{`cmd echo $HOME`}, func(c v1.Config) bool { return reflect.DeepEqual(c.Cmd, []string{"/bin/sh", "-c", "echo $HOME"}) }},
		// ENTRYPOINT clears the inherited CMD, not one set before it.
		{[]string{`ENTRYPOINT ["top"]`}, func(c v1.Config) bool { return c.Cmd == nil && c.Entrypoint[0] == "top" }},
		{[]string{`CMD ["-b"]`, `ENTRYPOINT ["top"]`}, func(c v1.Config) bool { return c.Cmd[0] == "-b" }},
		{[]string{`ENV A=new B="two words" C=x\ y`}, func(c v1.Config) bool {
			return reflect.DeepEqual(c.Env, []string{"PATH=/bin", "A=new", "B=two words", "C=x y"})
		}},
		{[]string{`ENV LEGACY value with spaces`}, func(c v1.Config) bool { return c.Env[2] == "LEGACY=value with spaces" }},
		{[]string{`LABEL a=1 "b c"='d e'`}, func(c v1.Config) bool { return c.Labels["a"] == "1" && c.Labels["b c"] == "d e" }},
		{[]string{`EXPOSE 80 53/udp 8000-8001`}, func(c v1.Config) bool {
			return len(c.ExposedPorts) == 4 && has(c.ExposedPorts, "80/tcp") && has(c.ExposedPorts, "53/udp") && has(c.ExposedPorts, "8001/tcp")
		}},
		{[]string{`WORKDIR app`, `WORKDIR ../x`}, func(c v1.Config) bool { return c.WorkingDir == "/srv/x" }},
		{[]string{`VOLUME ["/a", "/b"]`, `VOLUME /c`}, func(c v1.Config) bool { return len(c.Volumes) == 3 && has(c.Volumes, "/c") }},
		{[]string{`USER 1000:1000`, `STOPSIGNAL SIGINT`}, func(c v1.Config) bool { return c.User == "1000:1000" && c.StopSignal == "SIGINT" }},
		{[]string{`HEALTHCHECK --interval=5s --retries=2 CMD curl -f http://localhost/ || exit 1`}, func(c v1.Config) bool {
			h := c.Healthcheck
			return h != nil && slices.Equal(h.Test, []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"}) && h.Interval == 5*time.Second && h.Retries == 2
		}},
		{[]string{`HEALTHCHECK --timeout=1m30s cmd ["test", "-e", "/ok"]`}, func(c v1.Config) bool {
			h := c.Healthcheck
			return h != nil && slices.Equal(h.Test, []string{"CMD", "test", "-e", "/ok"}) && h.Timeout == 90*time.Second
		}},
		{[]string{`HEALTHCHECK CMD true`, `HEALTHCHECK NONE`}, func(c v1.Config) bool { return slices.Equal(c.Healthcheck.Test, []string{"NONE"}) }},
	} {
		cfg := base()
		if err := applyChanges(&cfg, c.changes); err != nil || !c.check(cfg) {
			t.Errorf("%q: %v, config %+v", c.changes, err, cfg)
		}
	}
	for change, says := range map[string]string{
		"RUN true":         "RUN is not a valid change command",
		"ONBUILD RUN true": "ONBUILD is not supported",
		"HEALTHCHECK --start-interval=1s CMD true": "--health-start-interval",
		"HEALTHCHECK --interval=10us CMD true":     "less than 1ms",
		"HEALTHCHECK --retries=-1 CMD true":        "--retries",
		"HEALTHCHECK --colour=red CMD true":        "unknown HEALTHCHECK flag",
		"HEALTHCHECK NONE extra":                   "takes no",
		"HEALTHCHECK CMD":                          "needs a command",
		"HEALTHCHECK CMD []":                       "needs a command",
		"HEALTHCHECK PING x":                       "use CMD or NONE",
		"EXPOSE 80/icmp":                           "use tcp, udp or sctp",
		"EXPOSE 0":                                 "give a port",
		"ENV":                                      "ENV needs an argument",
		`LABEL a="unclosed`:                        "unmatched",
		"LABEL novalue":                            "is not KEY=VALUE",
		"STOPSIGNAL SIGNOPE":                       "SIGNOPE",
		`VOLUME ["/a", ""]`:                        "empty string",
	} {
		cfg := base()
		err := applyChanges(&cfg, []string{change})
		if err == nil || !strings.Contains(err.Error(), says) || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: %v; want an invalid-argument error saying %q", change, err, says)
		}
	}
}

func has(m map[string]struct{}, k string) bool { _, ok := m[k]; return ok }
