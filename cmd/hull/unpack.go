package main

import (
	"hull/internal/image"
	"hull/internal/metadata"
	"hull/internal/snapshot"
)

// attachUnpacker connects the snapshotter so pulls and loads unpack layers
// as they arrive, making a finished pull a runnable image.
func (g *globals) attachUnpacker(svc *image.Service, db *metadata.DB) error {
	snap, err := snapshot.Open(db, g.cfg.Root, snapshot.Options{Driver: g.cfg.Storage.Snapshotter})
	if err != nil {
		return err
	}
	svc.SetUnpacker(snap)
	return nil
}
