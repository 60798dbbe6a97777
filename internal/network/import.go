package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// Networks from a CNI configuration directory (kubelet's runtimes'
// /etc/cni/net.d). The CRI server's pod network is the first conflist
// there in lexical order, as containerd and CRI-O pick it (PodConflist);
// Import copies it into hull's networks under its own name, so the pods
// attach to it like to any other network (native for the reference
// plugins hull implements, through libcni otherwise), `hull network ls`
// lists it and every hull process can detach it. The copy names its
// source (SourceLabel) and is rewritten when the source changes.
//
// The copy differs from its source in one way: a host-local IPAM without
// a dataDir gets hull's address store (<runRoot>/networks/ipam), so the
// native path and the host-local plugin hand out addresses from one pool
// and a reboot frees them (/var/lib/cni/networks, the plugin's default,
// survives reboots and leaks every address a crash kept).

// SourceLabel is the label of an imported network naming the file its
// conflist came from.
const SourceLabel = "io.hull.network.source"

// confExtensions are the files libcni, containerd and CRI-O read from a
// CNI configuration directory.
var confExtensions = []string{".conf", ".conflist", ".json"}

// PodConflist returns the pod network of a CNI configuration directory:
// the first file in lexical order that is a valid configuration (a
// .conf's single plugin made a list), with its path. Invalid files are
// skipped, each named in skipped. A directory with none gives an error
// wrapping os.ErrNotExist.
func PodConflist(dir string) (path string, data []byte, skipped []error, err error) {
	files, err := libcni.ConfFiles(dir, confExtensions)
	if err != nil {
		return "", nil, nil, fmt.Errorf("CNI configuration directory %s: %w", dir, err)
	}
	slices.Sort(files)
	for _, f := range files {
		var list *libcni.NetworkConfigList
		if strings.HasSuffix(f, ".conflist") {
			list, err = libcni.ConfListFromFile(f)
		} else {
			var conf *libcni.NetworkConfig
			if conf, err = libcni.ConfFromFile(f); err == nil {
				list, err = libcni.ConfListFromConf(conf)
			}
		}
		if err == nil && len(list.Plugins) == 0 {
			err = errors.New("no plugins")
		}
		if err != nil {
			skipped = append(skipped, fmt.Errorf("%s: %w", f, err))
			continue
		}
		return f, list.Bytes, skipped, nil
	}
	return "", nil, skipped, fmt.Errorf("no CNI configuration file in %s: %w", dir, os.ErrNotExist)
}

// Import makes the conflist data (from file source) hull's network of
// the same name, rewriting an earlier import when data changed, and
// returns it. A name hull's own networks use, or one of docker's modes,
// is refused.
func (m *Manager) Import(ctx context.Context, data []byte, source string) (*Network, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var c conflist
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if !validName.MatchString(c.Name) || len(c.Name) > 64 {
		return nil, fmt.Errorf("%s: network name %q: use letters, digits, _ . - (at most 64)", source, c.Name)
	}
	if c.Name == DefaultNetwork || slices.Contains(reservedNames, c.Name) {
		return nil, fmt.Errorf("%s: network name %q is hull's own (its default network or a mode): rename the network in the conflist", source, c.Name)
	}
	if old, err := m.load(c.Name); err == nil && old.Labels[SourceLabel] == "" {
		return nil, fmt.Errorf("%s: network name %q is a network hull made (hull network ls): rename one of them", source, c.Name)
	}
	for i, p := range c.Plugins {
		c.Plugins[i] = m.withDataDir(p)
	}
	args := &hullArgs{ID: newIDFrom(data), Labels: map[string]string{SourceLabel: source}}
	if old, err := m.load(c.Name); err == nil && old.Labels[SourceLabel] != "" {
		args.ID, args.Created = old.ID, old.Created // the same network, maybe changed
	}
	if fi, err := os.Stat(source); err == nil {
		args.Created = fi.ModTime().UTC().Truncate(1e9)
	}
	// Keep every key of the source (cniVersions, disableCheck, ...): only
	// plugins and args are hull's.
	raw["plugins"], _ = json.Marshal(c.Plugins)
	raw["args"], _ = json.Marshal(conflistArgs{Hull: args})
	out, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return nil, err
	}
	path := m.confPath(c.Name)
	if cur, err := os.ReadFile(path); err != nil || !bytes.Equal(cur, out) {
		tmp := path + ".import"
		if err := os.WriteFile(tmp, out, 0o644); err != nil {
			return nil, fmt.Errorf("network %s: %w", c.Name, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return nil, fmt.Errorf("network %s: %w", c.Name, err)
		}
	}
	return m.Inspect(ctx, c.Name)
}

// withDataDir is plugin p with hull's address store as its host-local
// IPAM's dataDir, unless it names one.
func (m *Manager) withDataDir(p json.RawMessage) json.RawMessage {
	var keys map[string]json.RawMessage
	if json.Unmarshal(p, &keys) != nil {
		return p
	}
	var ipam map[string]json.RawMessage
	if json.Unmarshal(keys["ipam"], &ipam) != nil {
		return p
	}
	var typ string
	_ = json.Unmarshal(ipam["type"], &typ)
	if typ != "host-local" || ipam["dataDir"] != nil {
		return p
	}
	ipam["dataDir"], _ = json.Marshal(m.ipamDir)
	keys["ipam"], _ = json.Marshal(ipam)
	out, err := json.Marshal(keys)
	if err != nil {
		return p
	}
	return out
}

// ConfDir is where the manager keeps its networks' conflists.
func (m *Manager) ConfDir() string { return m.confDir }

// Imported says whether n was imported from a CNI configuration
// directory (a CRI pod network): kubelet, not hull, then gives its pods
// their name servers.
func (n *Network) Imported() bool { return n.Labels[SourceLabel] != "" }
