package image

import (
	"net/http"
	"testing"

	"hull/internal/config"
)

// Plain HTTP only to loopback and configured insecure registries; every
// other registry (RFC 1918 ones included, which go-containerregistry would
// reach over HTTP) is upgraded to HTTPS. No request leaves the process.
func TestPlainHTTPOnlyWhereAllowed(t *testing.T) {
	cfg := config.Default()
	cfg.Registries.Insecure = []string{"registry.lan:5000"}
	s := &Service{cfg: cfg}
	var seen string
	rt := s.httpsUnlessInsecure(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = r.URL.Scheme
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}))
	for host, want := range map[string]string{
		"127.0.0.1:5000":    "http",
		"localhost:5000":    "http",
		"[::1]:5000":        "http",
		"registry.lan:5000": "http",
		"10.1.2.3:5000":     "https",
		"192.168.1.9":       "https",
		"registry.local":    "https",
		"quay.io":           "https",
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/", nil)
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if seen != want {
			t.Errorf("%s: scheme %s, want %s", host, seen, want)
		}
	}
}
