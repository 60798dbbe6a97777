package image

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"hull/internal/reference"
	"hull/internal/store"
)

// ErrorKind classifies what went wrong talking to a registry or storing what
// it sent, so the CLI can print a clear message and tests can assert it.
type ErrorKind string

const (
	ErrInvalidReference ErrorKind = "invalid reference"
	ErrUnreachable      ErrorKind = "registry unreachable"
	ErrUnauthorized     ErrorKind = "unauthorized"
	ErrNotFound         ErrorKind = "manifest unknown"
	ErrNoPlatform       ErrorKind = "no matching platform"
	ErrDigestMismatch   ErrorKind = "digest mismatch"
	ErrUnsupported      ErrorKind = "unsupported media type"
	ErrDiskFull         ErrorKind = "disk full"
	ErrInsecure         ErrorKind = "insecure registry"
	ErrDownload         ErrorKind = "download failed"
)

// kindClass is the errdefs class of each kind, for front ends that map
// classes (the CRI server, to gRPC codes).
var kindClass = map[ErrorKind]error{
	ErrInvalidReference: errdefs.ErrInvalidArgument,
	ErrUnreachable:      errdefs.ErrUnavailable,
	ErrUnauthorized:     errdefs.ErrUnauthenticated,
	ErrNotFound:         errdefs.ErrNotFound,
	ErrNoPlatform:       errdefs.ErrNotFound,
	ErrDigestMismatch:   errdefs.ErrDataLoss,
	ErrUnsupported:      errdefs.ErrNotImplemented,
	ErrDiskFull:         errdefs.ErrResourceExhausted,
	ErrInsecure:         errdefs.ErrFailedPrecondition, // until the config trusts it
	ErrDownload:         errdefs.ErrUnavailable,
}

// Error is a failed image operation: what was done, on which reference, what
// kind of failure, the cause, and what the user can do about it. Its
// class is its kind's (kindClass).
type Error struct {
	Op   string // pull, push, login ...
	Ref  string
	Kind ErrorKind
	Err  error
	Hint string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %s: %s", e.Op, e.Ref, e.Kind)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Unwrap gives the kind's class before the cause: errdefs.Resolve (which
// maps errors to gRPC codes) takes the first class it finds.
func (e *Error) Unwrap() []error {
	var errs []error
	if class := kindClass[e.Kind]; class != nil {
		errs = append(errs, class)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// IsKind reports whether err is an image Error of the given kind.
func IsKind(err error, k ErrorKind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// classify turns a registry, network or store error into an *Error.
func classify(op string, ref reference.Reference, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	e := &Error{Op: op, Ref: ref.String(), Err: err}
	var terr *transport.Error
	var de *store.DigestError
	var se *store.SizeError
	var dl *downloadError
	var stall *stallError
	switch {
	case errors.As(err, &de), errors.As(err, &se):
		e.Kind = ErrDigestMismatch
		e.Hint = "the registry sent content that does not match its digest; retry, and if it persists the registry's copy is corrupt"
	case errors.Is(err, store.ErrDiskFull), errors.Is(err, syscall.ENOSPC):
		e.Kind = ErrDiskFull
		e.Hint = "free space under the hull root and retry; blobs already stored are kept and reused"
	case errors.As(err, &dl):
		// The blob's own error names it; the store's and the layer's
		// wrappings around it would only repeat the digest.
		e.Kind = ErrDownload
		e.Err = dl
		e.Hint = "check that the registry is up and reachable, then pull again: blobs already stored are kept"
		if errors.As(err, &stall) {
			e.Hint += "; " + stall.hint()
		}
	case errors.As(err, &stall):
		e.Kind = ErrDownload
		e.Hint = "check that the registry is up and reachable; " + stall.hint()
	case errors.As(err, &terr):
		e.Err = errors.New(registryMessage(terr))
		switch {
		case hasCode(terr, transport.UnauthorizedErrorCode, transport.DeniedErrorCode) || terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			e.Kind = ErrUnauthorized
			e.Hint = "log in with: hull login " + ref.Domain + "; or check the repository name"
		case hasCode(terr, transport.NameUnknownErrorCode):
			e.Kind = ErrNotFound
			e.Err = fmt.Errorf("repository %s does not exist in %s", ref.Path, ref.Domain)
			e.Hint = "check the name; private repositories need: hull login " + ref.Domain
		case hasCode(terr, transport.ManifestUnknownErrorCode) || terr.StatusCode == http.StatusNotFound:
			e.Kind = ErrNotFound
			if ref.Digest != "" {
				e.Err = fmt.Errorf("digest %s does not exist in %s", ref.Digest, ref.Name())
			} else {
				e.Err = fmt.Errorf("tag %q does not exist in %s", ref.Tag, ref.Name())
			}
			e.Hint = "check the tag; the registry lists tags at /v2/" + ref.Path + "/tags/list"
		case hasCode(terr, transport.ManifestInvalidErrorCode, transport.UnsupportedErrorCode):
			e.Kind = ErrUnsupported
		default:
			e.Kind = ErrUnreachable
			e.Hint = "the registry answered with an error; retry later"
		}
	case isTLSToPlainHTTP(err):
		e.Kind = ErrInsecure
		e.Hint = fmt.Sprintf("the registry speaks plain HTTP; if you trust it, add %q to registries.insecure in the hull config", ref.Domain)
	case isNetErr(err):
		e.Kind = ErrUnreachable
		e.Hint = "check the address and that the registry is running"
	default:
		e.Kind = ErrUnreachable
	}
	return e
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

func registryMessage(te *transport.Error) string {
	var parts []string
	for _, d := range te.Errors {
		parts = append(parts, strings.ToLower(d.Message))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("registry answered HTTP %d", te.StatusCode)
	}
	return strings.Join(parts, "; ")
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	var ue *url.Error
	var dnsErr *net.DNSError
	return errors.As(err, &oe) || errors.As(err, &dnsErr) || errors.As(err, &ne) || errors.As(err, &ue) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

func isTLSToPlainHTTP(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// isLoopback reports whether a registry host is on this machine.
func isLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// insecure reports whether a registry may be reached over plain HTTP.
func (s *Service) insecure(domain string) bool {
	if isLoopback(domain) {
		return true
	}
	for _, h := range s.cfg.Registries.Insecure {
		if h == domain {
			return true
		}
	}
	return false
}

// gRepo converts a hull reference to go-containerregistry's repository,
// over plain HTTP if its registry may be reached so (insecure).
func (s *Service) gRepo(ref reference.Reference) (name.Repository, error) {
	var opts []name.Option
	if s.insecure(ref.Domain) {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(ref.Name(), opts...)
	if err != nil {
		return name.Repository{}, &Error{Op: "resolve", Ref: ref.String(), Kind: ErrInvalidReference, Err: err}
	}
	return repo, nil
}

// endpoint is one registry a pull may fetch a reference from: one of its
// registry's mirrors, or the registry itself.
type endpoint struct {
	// ref is the reference as that registry names it (a mirror's host and
	// path prefix in front of the image's path).
	ref reference.Reference
	// mirror is the mirror as configured ("host[:port][/prefix]"), or ""
	// for the image's own registry.
	mirror string
}

func (e endpoint) String() string {
	if e.mirror != "" {
		return "mirror " + e.ref.Name()
	}
	return e.ref.Name()
}

// pullEndpoints lists where a pull of ref is tried, in order: its
// registry's mirrors as configured (config.Registries.Mirrors), then the
// registry itself, as containerd tries a hosts.toml's hosts and then its
// server, and CRI-O a registries.conf's mirrors and then the location.
// With mirrors_only, a registry that has mirrors is left out: its name
// is then never looked up.
func (s *Service) pullEndpoints(ref reference.Reference) []endpoint {
	mirrors := s.cfg.Registries.Mirrors[ref.Domain]
	var eps []endpoint
	for _, m := range mirrors {
		at := ref
		host, prefix, _ := strings.Cut(strings.Trim(m, "/"), "/")
		at.Domain = host
		if prefix != "" {
			at.Path = prefix + "/" + ref.Path
		}
		eps = append(eps, endpoint{ref: at, mirror: m})
	}
	if len(mirrors) > 0 && s.cfg.Registries.MirrorsOnly {
		return eps
	}
	return append(eps, endpoint{ref: ref})
}

// resolve connects to ref's registry for a pull and fetches its top
// manifest, trying each endpoint (pullEndpoints) in turn. As containerd's
// resolver does, any failure there moves on to the next: a mirror that
// is down or refuses the connection, answers 404 (manifest or repository
// unknown), or any other error status (401, 403, 5xx). Only a cancelled
// pull stops at once. The endpoint that served the manifest serves the
// rest of the pull (its blobs); a failure after that is not retried
// elsewhere. When every endpoint failed, the error names each with its
// own error (endpointErrors), a lone mirror's too (mirrors_only), and
// says whether the registry itself was tried.
func (s *Service) resolve(ctx context.Context, ref reference.Reference, creds *Credentials) (*session, *remote.Descriptor, error) {
	eps := s.pullEndpoints(ref)
	var failed endpointErrors
	for _, ep := range eps {
		sess, err := s.connect(ctx, "pull", ep.ref, transport.PullScope, creds)
		var top *remote.Descriptor
		if err == nil {
			top, err = remote.Get(sess.ref(ep.ref), sess.opts...)
		}
		if err == nil {
			sess.via = ep
			return sess, top, nil
		}
		if (len(eps) == 1 && ep.mirror == "") || ctx.Err() != nil {
			return nil, nil, classify("pull", ref, err)
		}
		var e *Error
		errors.As(classify("pull", ep.ref, err), &e)
		failed = append(failed, endpointError{at: ep, err: e})
	}
	best := failed.mostRelevant()
	order := "mirrors from registries.mirrors are tried in order, then " + ref.Domain
	if eps[len(eps)-1].mirror != "" {
		order = "mirrors from registries.mirrors are tried in order; " + ref.Domain + " itself is not tried (registries.mirrors_only)"
	}
	return nil, nil, &Error{Op: "pull", Ref: ref.String(), Kind: best.Kind, Err: failed,
		Hint: strings.TrimPrefix(best.Hint+"; ", "; ") + order}
}

// endpointError is one endpoint's failure in a pull that tried several.
type endpointError struct {
	at  endpoint
	err *Error
}

// endpointErrors is why a pull that tried several endpoints failed: each
// endpoint with its own error, in the order they were tried.
type endpointErrors []endpointError

func (e endpointErrors) Error() string {
	parts := make([]string, len(e))
	for i, x := range e {
		parts[i] = fmt.Sprintf("%s: %s", x.at, x.err.Kind)
		if x.err.Err != nil {
			parts[i] += ": " + x.err.Err.Error()
		}
	}
	n := fmt.Sprintf("%d registries", len(e))
	if len(e) == 1 {
		n = "1 registry"
	}
	return fmt.Sprintf("tried %s: %s", n, strings.Join(parts, "; "))
}

func (e endpointErrors) Unwrap() []error {
	errs := make([]error, len(e))
	for i, x := range e {
		errs[i] = x.err
	}
	return errs
}

// mostRelevant is the error that says most about the image, as
// containerd's resolver picks it: a registry's refusal (unauthorized)
// over its not having the image, over not reaching it; of equals, the
// last (the registry itself, if it is one of them, for its hint).
func (e endpointErrors) mostRelevant() *Error {
	rank := func(k ErrorKind) int {
		switch k {
		case ErrUnauthorized:
			return 3
		case ErrNotFound:
			return 2
		}
		return 1
	}
	best := e[0].err
	for _, x := range e[1:] {
		if rank(x.err.Kind) >= rank(best.Kind) {
			best = x.err
		}
	}
	return best
}

// baseTransport is HTTP with sane timeouts; reads (GET, HEAD) also fail
// once nothing arrives for the configured pull idle time, since nothing
// else ends a response that stops half way. go-containerregistry defaults
// RFC 1918 and .local hosts to plain HTTP; hull allows plain HTTP only to
// loopback and configured insecure registries, so others are upgraded to
// HTTPS here.
func (s *Service) baseTransport() http.RoundTripper {
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return s.httpsUnlessInsecure(idleTimeout(s.cfg.Registries.PullIdleTimeout, s.cfg.Registries.PullMinRate, t))
}

// httpsUnlessInsecure upgrades plain-HTTP requests to HTTPS for every
// registry that is neither loopback nor configured insecure.
func (s *Service) httpsUnlessInsecure(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Scheme == "http" && !s.insecure(r.URL.Host) {
			r = r.Clone(r.Context())
			r.URL.Scheme = "https"
		}
		return next.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// session is an authenticated connection to one repository (a pull's
// is on the endpoint that served its manifest: see resolve).
type session struct {
	repo name.Repository
	rt   http.RoundTripper
	opts []remote.Option
	// via is where a pull's session is (a mirror or the registry).
	via endpoint
}

// ref is ref's tag or digest (digest wins) in the session's repository.
func (x *session) ref(ref reference.Reference) name.Reference {
	if ref.Digest != "" {
		return x.repo.Digest(ref.Digest)
	}
	return x.repo.Tag(ref.Tag)
}

// Credentials are registry credentials given with one pull (the CRI's
// AuthConfig), used instead of the credentials file.
type Credentials struct {
	Username, Password string
	// Auth is "user:password" in base64, as in a Docker config.json.
	Auth string
	// IdentityToken is an OAuth2 refresh token exchanged for an access
	// token; RegistryToken is a bearer token sent as it is.
	IdentityToken, RegistryToken string
}

// connect authenticates to ref's repository for the given scope (pull or
// push), with creds if given, else the credentials file. A pull connects
// through resolve, which picks the registry (a mirror or ref's own).
func (s *Service) connect(ctx context.Context, op string, ref reference.Reference, scope string, creds *Credentials) (*session, error) {
	repo, err := s.gRepo(ref)
	if err != nil {
		return nil, err
	}
	var auth authn.Authenticator
	if creds != nil {
		auth = authn.FromConfig(authn.AuthConfig{Username: creds.Username, Password: creds.Password, Auth: creds.Auth,
			IdentityToken: creds.IdentityToken, RegistryToken: creds.RegistryToken})
	} else if auth, err = s.keychain().Resolve(repo); err != nil {
		return nil, classify(op, ref, fmt.Errorf("read credentials: %w", err))
	}
	scopes := []string{repo.Scope(scope)}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, s.baseTransport(), scopes)
	if err != nil {
		return nil, classify(op, ref, err)
	}
	return &session{
		repo: repo,
		rt:   rt,
		opts: []remote.Option{remote.WithContext(ctx), remote.WithTransport(rt), remote.WithJobs(s.cfg.Registries.MaxConcurrentDownloads)},
	}, nil
}

// keychain reads the Docker-format credentials file.
func (s *Service) keychain() authn.Keychain {
	return &fileKeychain{path: AuthFilePath(s.cfg)}
}
