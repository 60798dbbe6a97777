package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"hull/internal/config"
	"hull/internal/reference"
)

// dockerHubAuthKey is the key docker uses for Docker Hub in config.json.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// AuthFilePath is the Docker-format credentials file hull reads and writes:
// the configured registries.auth_file, else $REGISTRY_AUTH_FILE, else
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
func AuthFilePath(cfg config.Config) string {
	if cfg.Registries.AuthFile != "" {
		return cfg.Registries.AuthFile
	}
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		return p
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".docker", "config.json")
}

// authKey is the config.json key for a registry host.
func authKey(domain string) string {
	if domain == reference.DefaultDomain {
		return dockerHubAuthKey
	}
	return domain
}

type authEntry struct {
	Auth string `json:"auth,omitempty"`
}

// readAuthFile returns the file's top-level keys (kept verbatim on rewrite)
// and its "auths" section.
func readAuthFile(path string) (map[string]json.RawMessage, map[string]authEntry, error) {
	top := map[string]json.RawMessage{}
	auths := map[string]authEntry{}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return top, auths, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read credentials %s: %w", path, err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return top, auths, nil
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, nil, fmt.Errorf("credentials file %s is not valid JSON: %w (fix or remove it)", path, err)
	}
	if raw, ok := top["auths"]; ok {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return nil, nil, fmt.Errorf("credentials file %s: \"auths\": %w", path, err)
		}
	}
	return top, auths, nil
}

func writeAuthFile(path string, top map[string]json.RawMessage, auths map[string]authEntry) error {
	raw, err := json.Marshal(auths)
	if err != nil {
		return err
	}
	top["auths"] = raw
	data, err := json.MarshalIndent(top, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write credentials %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write credentials %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write credentials %s: %w", path, err)
	}
	return nil
}

// fileKeychain resolves credentials from a Docker config.json.
type fileKeychain struct{ path string }

func (k *fileKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	_, auths, err := readAuthFile(k.path)
	if err != nil {
		return nil, err
	}
	host := res.RegistryStr()
	if host == name.DefaultRegistry {
		host = reference.DefaultDomain
	}
	for _, key := range []string{authKey(host), host, "https://" + host, "http://" + host, "https://" + host + "/v1/", "https://" + host + "/v2/"} {
		if e, ok := auths[key]; ok && e.Auth != "" {
			user, pass, err := decodeAuth(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("credentials for %s in %s: %w", host, k.path, err)
			}
			return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}), nil
		}
	}
	return authn.Anonymous, nil
}

func decodeAuth(s string) (user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", fmt.Errorf("auth is not base64: %w", err)
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", "", errors.New("auth is not user:password")
	}
	return user, pass, nil
}

// Login checks the credentials against the registry and, if they work,
// stores them in the credentials file.
func (s *Service) Login(ctx context.Context, domain, user, password string) error {
	if domain == "" || domain == "index.docker.io" {
		domain = reference.DefaultDomain
	}
	ref := reference.Reference{Domain: domain, Path: "library/x", Tag: "latest"}
	if user == "" || password == "" {
		return &Error{Op: "login", Ref: domain, Kind: ErrUnauthorized, Err: errors.New("username and password are required")}
	}
	var opts []name.Option
	if s.insecure(domain) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(domain, opts...)
	if err != nil {
		return &Error{Op: "login", Ref: domain, Kind: ErrInvalidReference, Err: err}
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	rt, err := transport.NewWithContext(ctx, reg, auth, s.baseTransport(), nil)
	if err != nil {
		return loginErr(domain, ref, err)
	}
	// The ping only learns how to authenticate; GET /v2/ proves the login.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return loginErr(domain, ref, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return &Error{Op: "login", Ref: domain, Kind: ErrUnauthorized, Err: errors.New("incorrect username or password")}
	}
	if resp.StatusCode >= 300 {
		return &Error{Op: "login", Ref: domain, Kind: ErrUnreachable, Err: fmt.Errorf("registry answered HTTP %d", resp.StatusCode)}
	}
	path := AuthFilePath(s.cfg)
	top, auths, err := readAuthFile(path)
	if err != nil {
		return err
	}
	auths[authKey(domain)] = authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	return writeAuthFile(path, top, auths)
}

func loginErr(domain string, ref reference.Reference, err error) error {
	e := classify("login", ref, err).(*Error)
	e.Ref = domain
	if e.Kind == ErrUnauthorized {
		e.Err, e.Hint = errors.New("incorrect username or password"), ""
	}
	return e
}

// Logout removes stored credentials for domain. It reports false if there
// were none.
func (s *Service) Logout(domain string) (bool, error) {
	if domain == "" || domain == "index.docker.io" {
		domain = reference.DefaultDomain
	}
	path := AuthFilePath(s.cfg)
	top, auths, err := readAuthFile(path)
	if err != nil {
		return false, err
	}
	found := false
	for _, k := range []string{authKey(domain), domain, "https://" + domain, "http://" + domain} {
		if _, ok := auths[k]; ok {
			delete(auths, k)
			found = true
		}
	}
	if !found {
		return false, nil
	}
	return true, writeAuthFile(path, top, auths)
}
