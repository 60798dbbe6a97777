package main

import (
	"errors"

	"hull/internal/image"
	"hull/internal/metadata"
	"hull/internal/snapshot"
	"hull/internal/trace"
)

// attachUnpacker connects the snapshotter so pulls and loads unpack layers
// as they arrive, making a finished pull a runnable image.
func (g *globals) attachUnpacker(svc *image.Service, db *metadata.DB) error {
	snap, err := snapshot.Open(db, g.cfg.Root, snapshot.Options{
		Driver: g.cfg.Storage.Snapshotter, NoSweep: g.spare,
		Limits: snapshot.Limits{MaxBytes: int64(g.cfg.Storage.MaxLayerSize), MaxImageBytes: int64(g.cfg.Storage.MaxImageSize)},
	})
	if err != nil {
		return err
	}
	g.snap = snap
	svc.SetUnpacker(snap)
	trace.Mark("snapshotter open")
	return nil
}

// openSnapshotter returns the snapshotter opened with the image service.
func openSnapshotter(g *globals) (*snapshot.Snapshotter, error) {
	if g.snap == nil {
		return nil, errors.New("snapshotter not open")
	}
	return g.snap, nil
}
