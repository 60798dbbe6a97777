package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// referencePlugins are the CNI plugins Debian's containernetworking-plugins
// package installs in /usr/lib/cni.
var referencePlugins = []string{
	"bandwidth", "bridge", "dhcp", "firewall", "host-device", "host-local", "ipvlan", "loopback",
	"macvlan", "portmap", "ptp", "sbr", "static", "tuning", "vlan", "vrf",
}

// checkPlugins names the first plugin binary of network n (IPAM plugins
// included) missing from the plugin directories, with what provides it.
func (m *Manager) checkPlugins(n *Network) error {
	var types []string
	for _, raw := range n.conf.Plugins {
		var p struct {
			Type string `json:"type"`
			IPAM struct {
				Type string `json:"type"`
			} `json:"ipam"`
		}
		_ = json.Unmarshal(raw, &p)
		types = append(types, p.Type)
		if p.IPAM.Type != "" {
			types = append(types, p.IPAM.Type)
		}
	}
	for _, t := range types {
		found := false
		for _, d := range m.pluginDirs {
			if fi, err := os.Stat(filepath.Join(d, t)); err == nil && fi.Mode().IsRegular() {
				found = true
				break
			}
		}
		if found {
			continue
		}
		hint := "put the plugin's executable in one of them"
		if slices.Contains(referencePlugins, t) {
			hint = "it is one of the CNI reference plugins: apt-get install containernetworking-plugins"
		}
		return fmt.Errorf("network %s: CNI plugin %q not found in %s (%s)", n.Name, t, strings.Join(m.pluginDirs, ", "), hint)
	}
	return nil
}

func (m *Manager) cni() *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir(m.pluginDirs, m.cacheDir, nil)
}

// runtimeConf is what libcni passes the plugins about attachment a.
func runtimeConf(a *Attachment, r AttachRequest) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: a.ContainerID, NetNS: a.NetNSPath, IfName: a.IfName,
		Args:           [][2]string{{"IgnoreUnknown", "1"}},
		CapabilityArgs: map[string]any{},
	}
	var ips []string
	for _, ip := range r.IP {
		ips = append(ips, ip.String())
	}
	if len(ips) > 0 {
		rt.Args = append(rt.Args, [2]string{"IP", strings.Join(ips, ",")}) // host-local's CNI_ARGS
		rt.CapabilityArgs["ips"] = ips
	}
	if r.MAC != "" {
		rt.Args = append(rt.Args, [2]string{"MAC", r.MAC}) // tuning's
		rt.CapabilityArgs["mac"] = r.MAC
	}
	if len(a.Ports) > 0 {
		type portMapping struct {
			HostPort      int    `json:"hostPort"`
			ContainerPort int    `json:"containerPort"`
			Protocol      string `json:"protocol"`
			HostIP        string `json:"hostIP,omitempty"`
		}
		var pm []portMapping
		for _, p := range a.Ports {
			hip := ""
			if p.HostIP.IsValid() {
				hip = p.HostIP.String()
			}
			pm = append(pm, portMapping{int(p.HostPort), int(p.ContainerPort), p.Protocol, hip})
		}
		rt.CapabilityArgs["portMappings"] = pm
	}
	if len(a.Aliases) > 0 {
		rt.CapabilityArgs["aliases"] = map[string][]string{a.Network: a.Aliases}
	}
	return rt
}

// attachPlugins sets up attachment a by running network n's plugins
// (CNI ADD) through libcni.
func (m *Manager) attachPlugins(ctx context.Context, n *Network, a *Attachment, r AttachRequest) error {
	data, err := os.ReadFile(n.Path)
	if err != nil {
		return err
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Path, err)
	}
	res, err := m.cni().AddNetworkList(ctx, list, runtimeConf(a, r))
	if err != nil {
		return fmt.Errorf("CNI ADD: %w", err)
	}
	result, err := types100.NewResultFromResult(res)
	if err != nil {
		return fmt.Errorf("CNI ADD: result: %w", err)
	}
	for _, ip := range result.IPs {
		addr, ok := netip.AddrFromSlice(ip.Address.IP)
		if !ok {
			continue
		}
		bits, _ := ip.Address.Mask.Size()
		a.Addresses = append(a.Addresses, netip.PrefixFrom(addr.Unmap(), bits))
		if gw, ok := netip.AddrFromSlice(ip.Gateway); ok {
			a.Gateways = append(a.Gateways, gw.Unmap())
		}
	}
	for _, iface := range result.Interfaces {
		if iface.Sandbox != "" && iface.Name == a.IfName {
			a.MAC = iface.Mac
		}
		if iface.Sandbox == "" && strings.HasPrefix(iface.Name, "veth") {
			a.HostVeth = iface.Name // the bridge or ptp plugin's host end
		}
	}
	// lo is the loopback plugin's, which runtimes call apart from the
	// network's list; hull brings it up on either path.
	return loopbackUp(a.NetNSPath)
}

// loopbackUp brings up lo in the namespace at path.
func loopbackUp(path string) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", path, err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("lo in the container: up: %w", err)
	}
	return nil
}

// detachPlugins runs CNI DEL for attachment a, with the config and
// arguments of its ADD as libcni cached them (the conflist if there is
// no cache). A namespace that is gone is passed as none, which the
// plugins take as "only release what is outside".
func (m *Manager) detachPlugins(ctx context.Context, a *Attachment, nsAlive bool) error {
	rt := &libcni.RuntimeConf{ContainerID: a.ContainerID, NetNS: a.NetNSPath, IfName: a.IfName,
		Args: [][2]string{{"IgnoreUnknown", "1"}}}
	cfg := m.cni()
	var list *libcni.NetworkConfigList
	stub := &libcni.NetworkConfigList{Name: a.Network}
	if cached, cachedRT, err := cfg.GetNetworkListCachedConfig(stub, rt); err == nil && cached != nil {
		if list, err = libcni.ConfListFromBytes(cached); err != nil {
			list = nil
		} else if cachedRT != nil {
			rt.CapabilityArgs, rt.Args = cachedRT.CapabilityArgs, cachedRT.Args
		}
	}
	if list == nil {
		data, err := os.ReadFile(m.confPath(a.Network))
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("CNI DEL: no cached config and no conflist %s", m.confPath(a.Network))
		}
		if err != nil {
			return err
		}
		if list, err = libcni.ConfListFromBytes(data); err != nil {
			return fmt.Errorf("%s: %w", m.confPath(a.Network), err)
		}
	}
	if !nsAlive {
		rt.NetNS = ""
	}
	if err := cfg.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("CNI DEL: %w", err)
	}
	return nil
}
