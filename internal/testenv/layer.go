package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

// epoch is the mtime of every fixture file and the creation time of every
// fixture image, so digests are the same on every run and every machine
// (given the same busybox binary).
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// entry is one tar member of a fixture layer.
type entry struct {
	name     string // relative, no leading "/" ("bin/sh", "etc/")
	typ      byte
	mode     int64 // permission bits plus setuid/setgid/sticky (04000, 02000, 01000)
	uid, gid int
	body     []byte
	link     string            // symlink target or hardlink target (a path in the layer)
	xattrs   map[string]string // written as PAX SCHILY.xattr.NAME records
}

func dir(name string, mode int64) entry { return entry{name: name + "/", typ: tar.TypeDir, mode: mode} }
func file(name string, mode int64, body string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, body: []byte(body)}
}
func fileBytes(name string, mode int64, body []byte) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, body: body}
}
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}
func hardlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeLink, mode: 0o644, link: target}
}
func fifo(name string, mode int64) entry { return entry{name: name, typ: tar.TypeFifo, mode: mode} }

// whiteout hides path (and everything under it) in lower layers.
func whiteout(dirname, base string) entry {
	return file(joinName(dirname, ".wh."+base), 0o644, "")
}

// opaque hides everything lower layers put in dirname, keeping the dir.
func opaque(dirname string) entry {
	return file(joinName(dirname, ".wh..wh..opq"), 0o644, "")
}

func joinName(dirname, base string) string {
	if dirname == "" {
		return base
	}
	return dirname + "/" + base
}

// tarball writes entries in order into an uncompressed tar stream.
func tarball(entries []entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     e.name,
			Linkname: e.link,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  epoch,
			Format:   tar.FormatPAX,
		}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if len(e.xattrs) > 0 {
			hdr.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write(e.body); err != nil {
				return nil, fmt.Errorf("tar body %s: %w", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// compression of a fixture layer blob.
type compression int

const (
	gzipped compression = iota
	zstded
)

// blobLayer is a v1.Layer held in memory as its compressed blob, with digest
// and diff ID computed once. The same blob can be pushed under several media
// types (Docker and OCI) without compressing it again.
type blobLayer struct {
	blob      []byte
	digest    v1.Hash
	diffID    v1.Hash
	comp      compression
	mediaType types.MediaType
}

// newLayer compresses an uncompressed tar. gzip (stdlib, no header mtime) and
// zstd (one encoder goroutine) both produce the same bytes for the same input.
func newLayer(tarBytes []byte, comp compression) (*blobLayer, error) {
	diffID, _, err := v1.SHA256(bytes.NewReader(tarBytes))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	mt := types.DockerLayer
	var zw io.WriteCloser
	switch comp {
	case gzipped:
		zw, err = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	case zstded:
		mt = types.OCILayerZStd
		zw, err = zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	}
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(tarBytes); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	digest, _, err := v1.SHA256(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return nil, err
	}
	return &blobLayer{blob: buf.Bytes(), digest: digest, diffID: diffID, comp: comp, mediaType: mt}, nil
}

// as returns the same blob under another media type: OCI for Docker and back.
// zstd layers only exist as OCI.
func (l *blobLayer) as(oci bool) *blobLayer {
	c := *l
	switch {
	case l.comp == zstded:
		c.mediaType = types.OCILayerZStd
	case oci:
		c.mediaType = types.OCILayer
	default:
		c.mediaType = types.DockerLayer
	}
	return &c
}

func (l *blobLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *blobLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *blobLayer) Size() (int64, error)     { return int64(len(l.blob)), nil }
func (l *blobLayer) MediaType() (types.MediaType, error) {
	return l.mediaType, nil
}
func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob)), nil
}
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) {
	switch l.comp {
	case zstded:
		zr, err := zstd.NewReader(bytes.NewReader(l.blob))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	default:
		return gzip.NewReader(bytes.NewReader(l.blob))
	}
}
