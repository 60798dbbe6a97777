package image

import (
	"context"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Inspect is `hull image inspect` output, shaped like docker's so scripts
// (and the seed's `image inspect nginx | grep -A 10 Layers`) work unchanged.
type Inspect struct {
	ID          string    `json:"Id"`
	RepoTags    []string  `json:"RepoTags"`
	RepoDigests []string  `json:"RepoDigests"`
	Parent      string    `json:"Parent"`
	Comment     string    `json:"Comment"`
	Created     time.Time `json:"Created"`
	Container   string    `json:"Container"`
	// ContainerConfig is docker's legacy copy of Config (of the container
	// a step was committed from); hull keeps none, so it is empty.
	ContainerConfig v1.Config `json:"ContainerConfig"`
	DockerVersion   string    `json:"DockerVersion"`
	Author          string    `json:"Author"`
	Config          v1.Config `json:"Config"`
	Architecture    string    `json:"Architecture"`
	Variant         string    `json:"Variant,omitempty"`
	Os              string    `json:"Os"`
	Size            int64     `json:"Size"`
	VirtualSize     int64     `json:"VirtualSize"`
	// StoredSize is the compressed size in the store (Size is unpacked
	// once the engine knows it, as docker's).
	StoredSize  int64       `json:"StoredSize,omitempty"`
	GraphDriver GraphDriver `json:"GraphDriver"`
	RootFS      RootFS      `json:"RootFS"`
	Metadata    struct {
		LastTagTime time.Time `json:"LastTagTime"`
	} `json:"Metadata"`

	// hull's additions: the manifest, and each layer's blob, size, and how
	// many stored images share it (shared base layers are stored once).
	Manifest ManifestInfo `json:"Manifest"`
	// Annotations are the manifest's (podman shows them so): a
	// checkpoint image's name the checkpointed container.
	Annotations  map[string]string `json:"Annotations,omitempty"`
	LayerDetails []LayerInfo       `json:"LayerDetails"`
}

// GraphDriver names the snapshotter that unpacks the image's layers.
type GraphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

// RootFS lists the layers' diff IDs (uncompressed digests), bottom first.
type RootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

// ManifestInfo identifies the stored manifest.
type ManifestInfo struct {
	Digest    string `json:"Digest"`
	MediaType string `json:"MediaType"`
}

// LayerInfo is one layer of an image.
type LayerInfo struct {
	DiffID    string `json:"DiffID"`
	Digest    string `json:"Digest"`
	MediaType string `json:"MediaType"`
	Size      int64  `json:"Size"`
	SharedBy  int    `json:"SharedBy"`
}

// Inspect builds the inspect document for one image.
func (s *Service) Inspect(ctx context.Context, r *Record) (*Inspect, error) {
	cf, m, shared, err := s.layerView(ctx, r)
	if err != nil {
		return nil, err
	}
	out := &Inspect{
		ID:           r.ConfigID.String(),
		RepoTags:     familiar(r.Names),
		RepoDigests:  familiarDigests(r.RepoDigests),
		Comment:      "",
		Created:      cf.Created.Time,
		Container:    cf.Container,
		Author:       cf.Author,
		Config:       cf.Config,
		Architecture: cf.Architecture,
		Variant:      cf.Variant,
		Os:           cf.OS,
		Size:         r.Size,
		VirtualSize:  r.Size,
		GraphDriver:  GraphDriver{Name: s.cfg.Storage.Snapshotter},
		RootFS:       RootFS{Type: "layers", Layers: []string{}},
		Manifest:     ManifestInfo{Digest: r.Digest.String(), MediaType: r.MediaType},
		Annotations:  m.Annotations,
	}
	out.DockerVersion = cf.DockerVersion
	out.Metadata.LastTagTime = r.Added
	for i, d := range cf.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
		if i < len(m.Layers) {
			l := m.Layers[i]
			out.LayerDetails = append(out.LayerDetails, LayerInfo{
				DiffID: d.String(), Digest: l.Digest.String(), MediaType: string(l.MediaType), Size: l.Size, SharedBy: shared[l.Digest.String()],
			})
		}
	}
	if out.RepoTags == nil {
		out.RepoTags = []string{}
	}
	return out, nil
}

// layerView reads what inspect and history describe: the image's config,
// its manifest, and how many images share each blob.
func (s *Service) layerView(ctx context.Context, r *Record) (*v1.ConfigFile, *v1.Manifest, map[string]int, error) {
	cf, err := s.Config(r)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := s.Manifest(r)
	if err != nil {
		return nil, nil, nil, err
	}
	shared, err := s.layerShares(ctx)
	return cf, m, shared, err
}

// layerShares counts, per blob, how many images use it.
func (s *Service) layerShares(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT blob, count(*) FROM image_blobs GROUP BY blob`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var b string
		var n int
		if err := rows.Scan(&b, &n); err != nil {
			return nil, err
		}
		out[b] = n
	}
	return out, rows.Err()
}

// HistoryEntry is one row of `hull image history`, newest first.
type HistoryEntry struct {
	ID        string    `json:"Id"` // image ID on the top row, "<missing>" below, as docker
	Created   time.Time `json:"Created"`
	CreatedBy string    `json:"CreatedBy"`
	Size      int64     `json:"Size"`
	// StoredSize is the layer's compressed size (Size is unpacked once
	// the engine knows it, as docker's).
	StoredSize int64  `json:"StoredSize,omitempty"`
	Comment    string `json:"Comment"`
	Layer      string `json:"Layer,omitempty"` // the layer blob, if this step made one
	SharedBy   int    `json:"SharedBy,omitempty"`
}

// History maps the config's history onto the layers.
func (s *Service) History(ctx context.Context, r *Record) ([]HistoryEntry, error) {
	cf, m, shared, err := s.layerView(ctx, r)
	if err != nil {
		return nil, err
	}
	hist := cf.History
	if len(hist) == 0 {
		// No recorded history: one row per layer.
		for range m.Layers {
			hist = append(hist, v1.History{Created: cf.Created})
		}
	}
	var out []HistoryEntry
	li := 0
	for _, h := range hist {
		e := HistoryEntry{ID: "<missing>", Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment}
		if !h.EmptyLayer && li < len(m.Layers) {
			e.Size = m.Layers[li].Size
			e.Layer = m.Layers[li].Digest.String()
			e.SharedBy = shared[e.Layer]
			li++
		}
		out = append(out, e)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = r.ConfigID.String()
	}
	return out, nil
}
