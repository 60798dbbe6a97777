package snapshot

// UnpacksConcurrently reports whether Unpack may be given a layer before its
// parent is unpacked: overlay layers are independent diffs, so a puller can
// apply each one while it downloads. The copy driver needs the parent first.
func (s *Snapshotter) UnpacksConcurrently() bool { return s.opts.Driver == Overlay }
