package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// changeCommands are the Dockerfile instructions `commit -c` and
// `import -c` take, as docker's.
const changeCommands = "CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR"

// applyChanges applies Dockerfile instructions ("CMD [\"sh\"]", "ENV
// A=1 B=2", "EXPOSE 80/tcp", ...) to an image config in order, as
// docker commit --change and docker import --change do: CMD, ENTRYPOINT
// and VOLUME take the JSON or the shell form; ENTRYPOINT clears a CMD
// that no earlier change set; WORKDIR is relative to the one before.
func applyChanges(cfg *v1.Config, changes []string) error {
	cmdSet := false
	for _, change := range changes {
		instr, rest, _ := strings.Cut(strings.TrimSpace(change), " ")
		rest = strings.TrimSpace(rest)
		bad := func(format string, args ...any) error {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("change %q: ", change) + fmt.Sprintf(format, args...))
		}
		if rest == "" && instr != "" {
			return bad("%s needs an argument", strings.ToUpper(instr))
		}
		switch strings.ToUpper(instr) {
		case "CMD":
			cfg.Cmd, cmdSet = commandForm(rest), true
		case "ENTRYPOINT":
			cfg.Entrypoint = commandForm(rest)
			if !cmdSet {
				cfg.Cmd = nil
			}
		case "ENV", "LABEL":
			pairs, err := keyValues(rest, strings.ToUpper(instr) == "ENV")
			if err != nil {
				return bad("%v", err)
			}
			for _, kv := range pairs {
				if instr = strings.ToUpper(instr); instr == "LABEL" {
					if cfg.Labels == nil {
						cfg.Labels = map[string]string{}
					}
					cfg.Labels[kv[0]] = kv[1]
					continue
				}
				cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
			}
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				ports, err := exposedPorts(p)
				if err != nil {
					return bad("%v", err)
				}
				if cfg.ExposedPorts == nil {
					cfg.ExposedPorts = map[string]struct{}{}
				}
				for _, port := range ports {
					cfg.ExposedPorts[port] = struct{}{}
				}
			}
		case "USER":
			cfg.User = rest
		case "WORKDIR":
			dir := rest
			if !path.IsAbs(dir) {
				dir = path.Join("/", cfg.WorkingDir, dir)
			}
			cfg.WorkingDir = path.Clean(dir)
		case "VOLUME":
			vols := strings.Fields(rest)
			if strings.HasPrefix(rest, "[") {
				if err := json.Unmarshal([]byte(rest), &vols); err != nil {
					return bad("VOLUME takes a JSON array of paths or paths separated by spaces")
				}
			}
			for _, v := range vols {
				if v == "" {
					return bad("VOLUME specified can not be an empty string")
				}
				if cfg.Volumes == nil {
					cfg.Volumes = map[string]struct{}{}
				}
				cfg.Volumes[v] = struct{}{}
			}
		case "STOPSIGNAL":
			if _, err := ParseSignal(rest); err != nil {
				return bad("%v", err)
			}
			cfg.StopSignal = rest
		case "HEALTHCHECK":
			hc, err := healthcheckChange(rest)
			if err != nil {
				return bad("%v", err)
			}
			cfg.Healthcheck = hc
		case "ONBUILD":
			return bad("ONBUILD is not supported: hull builds no images from Dockerfiles, so it keeps no build triggers (use one of %s)", changeCommands)
		default:
			return bad("%s is not a valid change command (use one of %s)", strings.ToUpper(instr), changeCommands)
		}
	}
	return nil
}

// commandForm is CMD's or ENTRYPOINT's argument: a JSON array (exec
// form), else a command for /bin/sh -c (shell form).
func commandForm(s string) []string {
	var args []string
	if strings.HasPrefix(s, "[") && json.Unmarshal([]byte(s), &args) == nil {
		return args
	}
	return []string{"/bin/sh", "-c", s}
}

// setEnv sets name=value in env, in place of an earlier value.
func setEnv(env []string, name, value string) []string {
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == name {
			env[i] = name + "=" + value
			return env
		}
	}
	return append(env, name+"="+value)
}

// keyValues parses ENV's and LABEL's "k=v k2=\"v 2\"", or ENV's older
// "k v w" (one variable, the rest its value).
func keyValues(s string, legacyEnv bool) ([][2]string, error) {
	words, err := shellWords(s)
	if err != nil {
		return nil, err
	}
	if legacyEnv && !strings.Contains(words[0], "=") {
		name, value, _ := strings.Cut(s, " ")
		return [][2]string{{name, strings.TrimSpace(value)}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// shellWords splits s into words as a Dockerfile does: blanks separate,
// quotes group and are removed, a backslash escapes the next character.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unmatched %c", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// exposedPorts expands EXPOSE's PORT[-END][/PROTO] into "port/proto"
// keys.
func exposedPorts(s string) ([]string, error) {
	ports, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("EXPOSE %s: protocol %q: use tcp, udp or sctp", s, proto)
	}
	first, last, isRange := strings.Cut(ports, "-")
	if !isRange {
		last = first
	}
	lo, err1 := strconv.Atoi(first)
	hi, err2 := strconv.Atoi(last)
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return nil, fmt.Errorf("EXPOSE %s: give a port (1-65535) or a range START-END", s)
	}
	var out []string
	for p := lo; p <= hi; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// healthcheckChange parses HEALTHCHECK's argument as a Dockerfile does:
// NONE, or [--interval=D] [--timeout=D] [--start-period=D] [--retries=N]
// CMD followed by a JSON array (exec form) or a command (run by the
// shell). --start-interval is refused: the image config go-containerregistry
// writes has no field for it, and dropping it would be silent.
func healthcheckChange(s string) (*v1.HealthConfig, error) {
	var hc v1.HealthConfig
	rest := strings.TrimSpace(s)
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		rest = strings.TrimSpace(after)
		name, value, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		if name == "retries" {
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("--retries %q: give a number, 0 or more", value)
			}
			hc.Retries = n
			continue
		}
		var field *time.Duration
		switch name {
		case "interval":
			field = &hc.Interval
		case "timeout":
			field = &hc.Timeout
		case "start-period":
			field = &hc.StartPeriod
		case "start-interval":
			return nil, errors.New("HEALTHCHECK --start-interval is not supported here (images hull writes cannot keep it); give the container --health-start-interval")
		default:
			return nil, fmt.Errorf("unknown HEALTHCHECK flag --%s (use --interval, --timeout, --start-period, --retries)", name)
		}
		d, err := time.ParseDuration(value)
		if err == nil && d != 0 && d < time.Millisecond {
			err = errors.New("it cannot be less than 1ms")
		}
		if err != nil {
			return nil, fmt.Errorf("--%s %q: %v (give a duration such as 30s)", name, value, err)
		}
		*field = d
	}
	typ, command, _ := strings.Cut(rest, " ")
	command = strings.TrimSpace(command)
	switch strings.ToUpper(typ) {
	case "NONE":
		if command != "" || hc.Interval != 0 || hc.Timeout != 0 || hc.StartPeriod != 0 || hc.Retries != 0 {
			return nil, errors.New("HEALTHCHECK NONE takes no flags or arguments")
		}
		return &v1.HealthConfig{Test: []string{"NONE"}}, nil
	case "CMD":
	case "":
		return nil, errors.New("HEALTHCHECK needs NONE, or CMD and a command")
	default:
		return nil, fmt.Errorf("unknown HEALTHCHECK type %q (use CMD or NONE)", typ)
	}
	var args []string
	if strings.HasPrefix(command, "[") && json.Unmarshal([]byte(command), &args) == nil {
		hc.Test = append([]string{"CMD"}, args...)
	} else {
		hc.Test = []string{"CMD-SHELL", command}
	}
	if command == "" || len(hc.Test) == 1 {
		return nil, errors.New("HEALTHCHECK CMD needs a command")
	}
	return &hc, nil
}
