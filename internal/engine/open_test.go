package engine

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"hull/internal/config"
	"hull/internal/metadata"
	"hull/internal/testenv"
)

// openTestEngine opens an engine, without images or snapshots, over a
// fresh root.
func openTestEngine(t testing.TB) *Engine {
	t.Helper()
	return openTestEngineAt(t, t.TempDir())
}

// openTestEngineAt opens the engine of root (another process's too).
func openTestEngineAt(t testing.TB, root string) *Engine {
	t.Helper()
	cfg := configAt(root)
	bridge, subnet := testenv.DefaultNetwork()
	cfg.Network.DefaultBridge, cfg.Network.DefaultSubnet = bridge, subnet
	t.Cleanup(func() { testenv.RemoveDefaultNetwork(t, cfg.Root, cfg.RunRoot, bridge, subnet) })
	db, err := metadata.Open(cfg.Root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e, err := openOver(cfg, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// testConfig is the default configuration over a fresh root.
func testConfig(t testing.TB) config.Config { return configAt(t.TempDir()) }

// configAt is the default configuration over root.
func configAt(root string) config.Config {
	cfg := config.Default()
	cfg.Root, cfg.RunRoot = root, filepath.Join(root, "run")
	return cfg
}

// On ext4 the directories every container makes and removes its own
// directories in carry the "T" attribute (see snapshot.MkdirSpread).
func TestContainerDirsSpreadSubdirs(t *testing.T) {
	e := openTestEngine(t)
	var st unix.Statfs_t
	if err := unix.Statfs(e.cfg.Root, &st); err != nil || st.Type != unix.EXT4_SUPER_MAGIC {
		t.Skip("the temp dir is not on ext4")
	}
	for _, d := range []string{e.persistDir(""), e.runDir(""), e.rt.Root} {
		fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
		unix.Close(fd)
		if err != nil || flags&0x00020000 == 0 {
			t.Errorf("%s: flags %#x (%v), want FS_TOPDIR_FL", d, flags, err)
		}
	}
}
