package image

import (
	"bytes"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzDecodeManifest feeds arbitrary registry answers through the decoding
// a pull does: manifest and index parsing, the media-type checks and the
// platform choice. Nothing may panic; every outcome is a value or an error.
func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + zeros + `","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:` + zeros + `","size":3}]}`))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + zeros + `","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}`))
	f.Add([]byte(`{"schemaVersion":1,"name":"x","fsLayers":[]}`))
	f.Add([]byte(`{"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json"}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := v1.ParseManifest(bytes.NewReader(data)); err == nil {
			_ = checkManifest(m)
		}
		if idx, err := v1.ParseIndexManifest(bytes.NewReader(data)); err == nil {
			for _, p := range []Platform{HostPlatform(), {OS: "linux", Architecture: "arm", Variant: "v7"}, {OS: "linux", Architecture: "arm64"}} {
				d, err := p.choose(idx)
				if err == nil && !p.matches(d.Platform) {
					t.Fatalf("chose %v for %v", d.Platform, p)
				}
			}
		}
	})
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"
